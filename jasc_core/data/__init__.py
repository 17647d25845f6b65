"""From clip lists to batches: clip datasets, the typed ``Batch``, collation, loaders and audio caches."""
