"""Predictions from a trained run: scoring clips, files of any length, post-processing, outputs, ONNX export."""
