"""The done-when experiment of docs/distillation.md at a size a shared CPU finishes: teachers, label-only and distilled
CP-Mobile students over seeds, device-specific fine-tuning, and the teacher cache's epoch time.

    python benchmarks/dcase_t1_distillation.py --out /tmp/t1exp --minutes 15 --epochs 6 --teacher-epochs 6

Every step is a `jasc` command on the repository's recipes with `--set` overrides (printed as it runs), so each
number in the summary can be remade by hand. Trainings run one after another, never at once. The summary
(``OUT/summary.json`` and a Markdown table on stdout) holds each run's eval accuracy, the per-device accuracy of the
general and the device-specific models, and the training throughput of label-only and distilled epochs.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=15.0, help="minutes of the dcase-disjoint stand-in")
    parser.add_argument("--epochs", type=int, default=6, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--subset", type=int, default=25)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="recipes: 32")
    parser.add_argument("--teacher-a-channels", type=int, default=48, help="recipe: 96")
    parser.add_argument("--teacher-b-channels", type=int, default=32, help="recipe: 64")
    args = parser.parse_args()
    out = args.out
    data = out / "data"
    if not (data / "tau" / "meta.csv").is_file():
        jasc("data", "synth", "--preset", "dcase-disjoint", "--minutes", str(args.minutes), "--sample-rate", "32000",
             "--out", str(data))
    # Shrunk beside the recipes: batch 8 instead of 32 and 1 warmup epoch instead of 3, so that a few epochs of a
    # small subset still make some optimiser steps (the recipes' 32 x 3 epochs would be 9 steps of warmup here).
    common = [f"data.root={data / 'tau'}", "data.subset_rule=drawn", f"data.subset={args.subset}",
              "evaluate.plots=false", "train.num_workers=0", f"train.batch_size={args.batch_size}",
              "train.lr_schedule.warmup_epochs=1.0"]
    teachers = [
        train("dcase_t1_teacher_a.yaml", "teacher_a", [*common, f"train.epochs={args.teacher_epochs}",
              f"model.encoder.base_channels={args.teacher_a_channels}"], out),
        train("dcase_t1_teacher_b.yaml", "teacher_b", [*common, f"train.epochs={args.teacher_epochs}",
              f"model.encoder.base_channels={args.teacher_b_channels}"], out),
    ]
    distill = [f"distill.teachers=[{teachers[0]}, {teachers[1]}]", f"distill.cache_dir={out / 'teacher_cache'}"]
    runs: dict[str, list[Path]] = {"labels": [], "distilled": []}
    for seed in range(args.seeds):
        student = [*common, f"train.epochs={args.epochs}", f"seed={seed}"]
        runs["labels"].append(train("dcase_t1_student_labels.yaml", f"labels_s{seed}", student, out))
        runs["distilled"].append(train("dcase_t1_student_distilled.yaml", f"distilled_s{seed}",
                                       [*student, *distill], out))
    general = runs["distilled"][0]
    if not (general / "device_models.json").is_file():
        jasc("finetune-devices", str(general), "--epochs", str(args.finetune_epochs), "--lr", "0.001")
    summary = {
        "settings": vars(args) | {"out": str(out)},
        "teachers": {t.name: accuracy(t) for t in teachers},
        "accuracy": {kind: [accuracy(r) for r in rs] for kind, rs in runs.items()},
        # Epoch 1 fills the teacher cache; later epochs read it.
        "train_clips_per_s": {kind: [throughput(r) for r in rs] for kind, rs in runs.items()},
        "devices": json.loads((general / "device_models.json").read_text()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    for kind, values in summary["accuracy"].items():
        mean = statistics.mean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"| {kind} | {' / '.join(f'{100 * v:.2f}' for v in values)} | {100 * mean:.2f} ± {100 * std:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
