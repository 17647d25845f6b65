"""Compare threshold optimisers on stored scores: tune on the validation part, measure F1 on the eval part.

The file is a NumPy ``.npz`` with ``val_scores``, ``val_targets``, ``eval_scores`` and ``eval_targets``, each
``[clips, classes]`` (the protocol of 002 and of the files in ``shared/benchmarks/sglthresh``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jasc_core.errors import DataError
from jasc_thresholds.metrics import Metric, thresholded_f1
from jasc_thresholds.tuning import build_optimizer, timed_fit

BENCH_KEYS: tuple[str, ...] = ("val_scores", "val_targets", "eval_scores", "eval_targets")


def load_bench_file(path: str | Path) -> dict[str, np.ndarray]:
    """The four arrays of a benchmark file, checked; a ``DataError`` names the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an .npz archive (a single array); expected keys {', '.join(BENCH_KEYS)}")
    with loaded as archive:
        missing = [key for key in BENCH_KEYS if key not in archive.files]
        if missing:
            raise DataError(f"{path}: missing key {missing[0]!r} (has: {', '.join(archive.files) or 'nothing'})")
        try:
            arrays = {key: np.asarray(archive[key]) for key in BENCH_KEYS}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: an array could not be read ({exc})") from None
    for key, array in arrays.items():
        if array.ndim != 2:
            raise DataError(f"{path}: key {key!r} must be [clips, classes], got shape {array.shape}")
        if array.size == 0:
            raise DataError(f"{path}: key {key!r} is empty")
        if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
            raise DataError(f"{path}: key {key!r} is not numeric (dtype {array.dtype})")
        if not np.all(np.isfinite(array)):
            raise DataError(f"{path}: key {key!r} holds NaN or infinite values")
    for part in ("val", "eval"):
        scores, targets = arrays[f"{part}_scores"], arrays[f"{part}_targets"]
        if scores.shape != targets.shape:
            raise DataError(f"{path}: key '{part}_targets' has shape {targets.shape}, '{part}_scores' {scores.shape}")
        if not np.all((targets == 0) | (targets == 1)):
            raise DataError(f"{path}: key '{part}_targets' must hold only 0 and 1")
    if arrays["val_scores"].shape[1] != arrays["eval_scores"].shape[1]:
        raise DataError(
            f"{path}: key 'eval_scores' has {arrays['eval_scores'].shape[1]} classes, "
            f"'val_scores' {arrays['val_scores'].shape[1]}"
        )
    return arrays


def run_bench(
    arrays: dict[str, np.ndarray],
    methods: Sequence[str],
    metric: Metric = "micro",
    init: float | None = None,
) -> list[dict[str, Any]]:
    """Tune each method on the validation part; one row per method with val/eval F1 (%) and tuning time (s)."""
    rows = []
    for method in methods:
        optimizer = build_optimizer(method, metric=metric, init=init)
        thresholds, seconds = timed_fit(optimizer, arrays["val_scores"], arrays["val_targets"])
        rows.append(
            {
                "method": method,
                "metric": metric,
                "val_f1": 100 * thresholded_f1(arrays["val_scores"], arrays["val_targets"], thresholds, metric),
                "eval_micro_f1": 100 * thresholded_f1(arrays["eval_scores"], arrays["eval_targets"], thresholds),
                "eval_macro_f1": 100
                * thresholded_f1(arrays["eval_scores"], arrays["eval_targets"], thresholds, "macro"),
                "seconds": seconds,
                "thresholds": [float(t) for t in thresholds],
            }
        )
    return rows
