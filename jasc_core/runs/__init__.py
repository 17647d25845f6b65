"""Run folders: their layout and files written atomically, recipe hashes, checkpoints and RNG state."""
