"""Training clips/s of whole `jasc run`s, for several source trees side by side (one at a time, interleaved).

Compares the engine of two commits on the same machine in one run, so that a busy machine slows both alike:

    git worktree add ../jasc-before <commit>
    python benchmarks/run_throughput.py --tree . --tree ../jasc-before --rounds 3 --epochs 12

Each round runs every tree once (in turn, never two at a time, the order reversed every other round), each a `jasc run` of the recipe with the tree's
own code first on PYTHONPATH; the figure is the mean of the per-epoch `train_clips_per_s` in history.json,
skipping the first epoch (audio decoding and caches). The data cache is shared, built before the first round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(tree: Path, recipe: Path, epochs: int, out: Path, env: dict[str, str]) -> float:
    environment = {**env, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'plugins'}"}
    command = [sys.executable, "-m", "jasc_core.cli", "run", str(recipe), "--out", str(out),
               "--set", f"train.epochs={epochs}", "--set", "evaluate.plots=false"]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tree)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: jasc run failed:\n{done.stderr[-2000:]}")
    history = json.loads((out / "history.json").read_text())
    return statistics.mean(record["train_clips_per_s"] for record in history[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=Path, required=True, help="a jasc source tree (repeat)")
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "quickstart.yaml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (OMP_NUM_THREADS)")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    figures: dict[Path, list[float]] = {tree: [] for tree in args.tree}
    with tempfile.TemporaryDirectory() as scratch:
        env.setdefault("JASC_CACHE", str(Path(scratch) / "cache"))
        for round_ in range(args.rounds):
            # Every other round runs the trees in reverse, so that neither always goes first (caches, clocks).
            order = list(enumerate(args.tree))
            for i, tree in order if round_ % 2 == 0 else order[::-1]:
                figures[tree].append(run_once(tree.resolve(), args.recipe.resolve(), args.epochs,
                                              Path(scratch) / f"r{round_}_{i}", env))
    print(f"recipe {args.recipe.name}, {args.epochs} epochs, {args.rounds} rounds, {args.threads} thread(s)")
    print("tree | training clips/s per round | mean")
    for tree, values in figures.items():
        print(f"{tree} | {', '.join(f'{v:.2f}' for v in values)} | {statistics.mean(values):.2f}")


if __name__ == "__main__":
    main()
