"""Every threshold optimiser on 002's two DCASE tagging sets, beside the paper's eval figures (its Table 2).

    python benchmarks/thresholds.py                      # data from ../shared/benchmarks/sglthresh (repo root)
    python benchmarks/thresholds.py --data DIR --repeats 5 --json

Protocol of 002 (and of the data's README): tune on the validation part, report micro-F1 (%) on the eval part,
detection ``score > threshold``, initial (or fixed) threshold 0.3 on DCASE2017 and 0.5 on DCASE2019. Every method
maximises micro-F1 except the ``sgl (macro loss)`` row, the loss 002's published DCASE2017 notebook used.

Time is the wall-clock time of ``fit`` (tuning only: no file reading, no torch import), the median of ``--repeats``
runs; the first run also pays for one-time lazy initialisation. F1 does not depend on the run (``search`` is seeded).
``eval - sgl`` is the eval micro-F1 difference to ``sgl`` with a 95% paired-bootstrap interval over eval clips:
an interval that contains 0 means the eval set cannot tell the two methods apart.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jasc_thresholds.bench import load_bench_file
from jasc_thresholds.metrics import binarize
from jasc_thresholds.tuning import build_optimizer, timed_fit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "sglthresh"

#: (file stem, title, initial threshold) as in 002.
SETS = (("dcase2017", "DCASE2017", 0.3), ("dcase2019", "DCASE2019", 0.5))

#: (row label, method, options) in the paper's order, then jasc's own.
METHODS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("fixed (defThresh)", "fixed", {}),
    ("search (dichoThresh)", "search", {}),
    ("numeric (numThresh)", "numeric", {}),
    ("sgl (SGL-Thresh)", "sgl", {}),
    ("sgl (macro loss)", "sgl", {"metric": "macro"}),
    ("coordinate", "coordinate", {}),
    ("cv_select (sgl or coordinate)", "cv_select", {}),
)

#: 002 Table 2, eval micro-F1 (%), by method and set.
PAPER = {
    "fixed": {"dcase2017": 59.0, "dcase2019": 71.3},
    "search": {"dcase2017": 61.4, "dcase2019": 71.4},
    "numeric": {"dcase2017": 60.3, "dcase2019": 72.2},
    "sgl": {"dcase2017": 62.0, "dcase2019": 73.0},
}


def micro_f1_per_resample(decisions: np.ndarray, targets: np.ndarray, resamples: np.ndarray) -> np.ndarray:
    """Micro-F1 of each bootstrap resample of the rows (``resamples``: ``[B, n]`` row indices)."""
    tp = (decisions & targets).sum(axis=1)[resamples].sum(axis=1)
    predicted = decisions.sum(axis=1)[resamples].sum(axis=1)
    actual = targets.sum(axis=1)[resamples].sum(axis=1)
    return 2 * tp / np.maximum(predicted + actual, 1)


def run_set(path: Path, init: float, repeats: int, bootstrap: int) -> list[dict[str, Any]]:
    arrays = load_bench_file(path)
    val_scores, val_targets = arrays["val_scores"], arrays["val_targets"]
    eval_targets = arrays["eval_targets"] > 0.5
    resamples = np.random.default_rng(0).integers(0, len(eval_targets), (bootstrap, len(eval_targets)))
    rows, reference = [], None
    for label, method, options in METHODS:
        optimizer = build_optimizer(method, metric="micro", init=init, options=options)
        times = []
        for _ in range(repeats):
            thresholds, seconds = timed_fit(optimizer, val_scores, val_targets)
            times.append(seconds)
        val_decisions = binarize(val_scores, thresholds)
        eval_decisions = binarize(arrays["eval_scores"], thresholds)
        per_resample = micro_f1_per_resample(eval_decisions, eval_targets, resamples)
        full = micro_f1_per_resample(eval_decisions, eval_targets, np.arange(len(eval_targets))[None])[0]
        if label.startswith("sgl (SGL"):
            reference = (full, per_resample)
        rows.append(
            {
                "set": path.stem,
                "method": label,
                "val_micro_f1": 100 * micro_f1_per_resample(val_decisions, val_targets > 0.5,
                                                            np.arange(len(val_targets))[None])[0],
                "eval_micro_f1": 100 * full,
                "paper_eval_micro_f1": PAPER.get(method, {}).get(path.stem) if not options else None,
                "seconds_median": statistics.median(times),
                "seconds_first": times[0],
                "_per_resample": per_resample,
            }
        )
    for row in rows:
        per_resample = row.pop("_per_resample")
        if reference is not None:
            delta = 100 * (per_resample - reference[1])
            row["eval_minus_sgl"] = row["eval_micro_f1"] - 100 * reference[0]
            row["eval_minus_sgl_ci95"] = [float(np.percentile(delta, 2.5)), float(np.percentile(delta, 97.5))]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with dcase2017.npz, dcase2019.npz")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (median reported)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="paired-bootstrap resamples of the eval clips")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args(argv)

    rows = []
    for stem, _, init in SETS:
        path = args.data / f"{stem}.npz"
        if not path.is_file():
            print(f"error: {path} not found (use --data)", file=sys.stderr)
            return 2
        rows.extend(run_set(path, init, args.repeats, args.bootstrap))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0

    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads; tuned on val, micro-F1 (%) on eval")
    header = ("set", "method", "val", "eval", "paper", "eval - sgl [95% CI]", "time s (median)", "time s (first)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        paper = row["paper_eval_micro_f1"]
        low, high = row["eval_minus_sgl_ci95"]
        print(
            f"| {row['set']} | {row['method']} | {row['val_micro_f1']:.2f} | {row['eval_micro_f1']:.2f} | "
            f"{'' if paper is None else f'{paper:.1f}'} | {row['eval_minus_sgl']:+.2f} [{low:+.2f}, {high:+.2f}] | "
            f"{row['seconds_median']:.3f} | {row['seconds_first']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
