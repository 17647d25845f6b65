"""The done-when experiment of docs/distillation.md at a size a shared CPU finishes: teachers, label-only and distilled
CP-Mobile students over seeds, device-specific fine-tuning, and the teacher cache's epoch time.

    python benchmarks/dcase_t1_distillation.py --out /tmp/t1exp --minutes 15 --epochs 12 --teacher-epochs 25

As in DCASE Task 1 practice the teachers train on the whole training split (``--teacher-subset 100``) and the students
on the subset (``--subset 25``). Every step is a `jasc` command on the repository's recipes with `--set` overrides
(printed as it runs), so each number in the summary can be remade by hand. Trainings run one after another, never at
once; a run whose folder already holds ``metrics.json`` is kept, so an interrupted experiment continues where it
stopped. ``--teachers-only`` stops after the teachers (to check they beat the students before spending the rest).

The cache's cost is measured side by side (``--timing-pairs N``): N pairs of short runs of the seed-0 student, label
only then distilled with the teachers' outputs already cached, one after the other, so that the machine's load moves
both runs of a pair alike; the summary gives each pair's ratio of training time per clip and their median.

The summary (``OUT/summary.json`` and Markdown rows on stdout) holds each run's eval accuracy, the per-device accuracy
of the general and the device-specific models, and the training throughput of label-only and distilled epochs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def jasc(*args: str) -> None:
    command = ["jasc", *args]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def train(recipe: str, name: str, sets: list[str], out: Path) -> Path:
    run = out / "runs" / name
    if not (run / "metrics.json").is_file():
        jasc("run", str(RECIPES / recipe), "--out", str(run), *[x for s in sets for x in ("--set", s)])
    return run


def accuracy(run: Path) -> float:
    return json.loads((run / "metrics.json").read_text())["eval"]["scene"]["accuracy"]


def throughput(run: Path) -> list[float]:
    return [r["train_clips_per_s"] for r in json.loads((run / "history.json").read_text())]


def tag(args: argparse.Namespace) -> str:
    """The distilled runs' folder suffix naming teachers, T and weight where they are not the defaults (so that a
    continued experiment never takes a run distilled otherwise for one of these)."""
    if (args.teachers, args.temperature, args.weight) == ("ab", 2.0, 1.0):
        return ""
    return f"_{args.teachers}_T{args.temperature:g}_w{args.weight:g}"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=15.0, help="minutes of the dcase-disjoint stand-in")
    parser.add_argument("--epochs", type=int, default=6, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--subset", type=int, default=25, help="the students' training subset, percent")
    parser.add_argument("--teacher-subset", type=int, default=100, help="the teachers' training subset, percent")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--weight", type=float, default=1.0, help="distill.weight")
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="recipes: 32")
    parser.add_argument("--teacher-a-channels", type=int, default=48, help="recipe: 96")
    parser.add_argument("--teacher-b-channels", type=int, default=32, help="recipe: 64")
    parser.add_argument("--teachers", choices=["ab", "a", "b"], default="ab",
                        help="the students' teachers: the ensemble of A and B, or one of them (only those are trained)")
    parser.add_argument("--teachers-only", action="store_true", help="train the teachers, print them, stop")
    parser.add_argument("--timing-pairs", type=int, default=0, help="side-by-side pairs for the cache's epoch time")
    parser.add_argument("--timing-epochs", type=int, default=3)
    return parser.parse_args()


def timing(args: argparse.Namespace, student: list[str], distill: list[str], out: Path) -> dict[str, object]:
    """Pairs of label-only and cached-distillation runs one after the other (the distilled student of seed 0 filled
    the cache): each pair's ratio of seconds per training clip, distilled over label-only."""
    sets = [*student, f"train.epochs={args.timing_epochs}", "seed=0"]
    ratios, pairs = [], []
    for pair in range(args.timing_pairs):
        labels = throughput(train("dcase_t1_student_labels.yaml", f"time{pair}_labels", sets, out))
        cached = throughput(train("dcase_t1_student_distilled.yaml", f"time{pair}_cached{tag(args)}",
                                  [*sets, *distill, "distill.outputs=cached"], out))
        ratios.append(statistics.mean(labels) / statistics.mean(cached))
        pairs.append({"labels_clips_per_s": labels, "cached_clips_per_s": cached})
    return {"pairs": pairs, "time_ratio": ratios, "median_time_ratio": statistics.median(ratios) if ratios else None}


def main() -> int:
    args = arguments()
    out = args.out
    data = out / "data"
    if not (data / "tau" / "meta.csv").is_file():
        jasc("data", "synth", "--preset", "dcase-disjoint", "--minutes", str(args.minutes), "--sample-rate", "32000",
             "--out", str(data))
    # Shrunk beside the recipes: batch 8 instead of 32 and 1 warmup epoch instead of 3, so that a few epochs of a
    # small subset still make some optimiser steps (the recipes' 32 x 3 epochs would be 9 steps of warmup here).
    common = [f"data.root={data / 'tau'}", "data.subset_rule=drawn", "evaluate.plots=false", "train.num_workers=0",
              f"train.batch_size={args.batch_size}", "train.lr_schedule.warmup_epochs=1.0"]
    teacher = [*common, f"data.subset={args.teacher_subset}", f"train.epochs={args.teacher_epochs}"]
    teachers = [train(f"dcase_t1_teacher_{t}.yaml", f"teacher_{t}",
                      [*teacher, f"model.encoder.base_channels={getattr(args, f'teacher_{t}_channels')}"], out)
                for t in args.teachers]
    for run in teachers:
        print(f"| {run.name} | {100 * accuracy(run):.2f} |", flush=True)
    if args.teachers_only:
        return 0
    distill = [f"distill.teachers=[{', '.join(map(str, teachers))}]", f"distill.cache_dir={out / 'teacher_cache'}",
               f"distill.temperature={args.temperature}", f"distill.weight={args.weight}"]
    runs: dict[str, list[Path]] = {"labels": [], "distilled": []}
    student = [*common, f"data.subset={args.subset}"]
    for seed in range(args.seeds):
        sets = [*student, f"train.epochs={args.epochs}", f"seed={seed}"]
        runs["labels"].append(train("dcase_t1_student_labels.yaml", f"labels_s{seed}", sets, out))
        runs["distilled"].append(train("dcase_t1_student_distilled.yaml", f"distilled{tag(args)}_s{seed}",
                                       [*sets, *distill], out))
    general = runs["distilled"][0]
    if args.finetune_epochs > 0 and not (general / "device_models.json").is_file():
        jasc("finetune-devices", str(general), "--epochs", str(args.finetune_epochs), "--lr", "0.001")
    summary = {
        "settings": vars(args) | {"out": str(out)},
        "teachers": {t.name: accuracy(t) for t in teachers},
        "accuracy": {kind: [accuracy(r) for r in rs] for kind, rs in runs.items()},
        # Epoch 1 fills the teacher cache; later epochs read it.
        "train_clips_per_s": {kind: [throughput(r) for r in rs] for kind, rs in runs.items()},
        "devices": (json.loads((general / "device_models.json").read_text())
                    if (general / "device_models.json").is_file() else None),
        "cache_timing": timing(args, student, distill, out),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    for kind, values in summary["accuracy"].items():
        mean = statistics.mean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"| {kind} | {' / '.join(f'{100 * v:.2f}' for v in values)} | {100 * mean:.2f} ± {100 * std:.2f} |")
    ratios = summary["cache_timing"]["time_ratio"]
    if ratios:
        print(f"cached distillation / label-only time per training clip: {' / '.join(f'{r:.2f}' for r in ratios)} "
              f"(median {summary['cache_timing']['median_time_ratio']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
