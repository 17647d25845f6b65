"""Procedural synthetic soundscapes (see docs/synthetic.md): DSP primitives, sound classes, presets, writing."""
