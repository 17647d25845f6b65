"""Training throughput per precision x compile: clips/s, the fraction of matmul FLOP/s reached, and data wait.

    python benchmarks/train_throughput.py [--device auto|cpu|cuda] [--models tonami,mt003] [--rounds 3] [--steps 4]
        [--layouts contiguous,channels_last]
        [--batch-size 8] [--clip-seconds 10] [--precisions fp32,bf16] [--compile off,on] [--workers 2] [--json]

Models: ``tonami`` is the network of 001 Table II (full size, 16 kHz, 64 mel bands, as benchmarks have always used);
``mt003`` is 003's MT model with the features of ``recipes/mt003_soft.yaml`` (128 mel bands, 10-ms hop). Both train
on batches of 10-s clips with both heads (scene and event loss every step), constant weighting, RAdam.

What one run measures, side by side (the machine is shared and noisy, so nothing is compared across runs):

1. **compute**: for every model x precision x compile combination, training steps (features, encoder and heads under
   the precision's autocast, fp32 losses, backward, optimiser step) on random waveforms already on the device. Every
   combination is built and warmed up first (compiling included); then ``--rounds`` rounds each time ``--steps``
   steps of every combination in turn, the order reversed every other round. The figure is the median over rounds.
2. **matmul FLOP/s** in fp32 and in bf16, timed in each round beside the steps (median), and each combination's
   achieved FLOP/s as a fraction of the matmul figure of its own dtype. Training FLOPs per clip = 3 x forward
   FLOPs (backward ~ 2 x forward), forward FLOPs = 2 x the MACs of ``jasc_core.model.complexity.count_macs``
   (``FlopCounterMode`` plus the GRU formula); the log-mel front end is not counted.
3. **data wait** (unless ``--skip-data``): the fastest combination of each model fed by the real data path (synthetic
   clips on disk, ``ClipDataset`` + ``DataLoader`` with ``--workers`` processes, no cache): the share of step time
   spent blocked on the loader.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jasc_core import component
from jasc_core.errors import ConfigError
from jasc_core.model.complexity import count_macs
from jasc_core.model.device import autocast_for, resolve_device, resolve_precision
from jasc_core.model.pipeline import Pipeline, build_model
from jasc_core.recipes.model import load_recipe
from jasc_core.training.compile import compile_models, use_channels_last

ROOT = Path(__file__).resolve().parents[1]
N_CLASSES = {"tonami": {"scene": 4, "event": 25}, "mt003": {"scene": 10, "event": 10}}


def build(name: str, device: torch.device) -> tuple[Pipeline, Any]:
    """A model's pipeline on ``device`` (eval statistics fitted to unit scale) and its recipe's features block."""
    if name == "tonami":
        features = component("features", "logmel")({"sample_rate": 16000, "n_mels": 64})
        model_block = {"encoder": {"name": "tonami_cnn"},
                       "heads": {"scene": {"name": "tonami_scene"}, "event": {"name": "bigru"}}}
    elif name == "mt003":
        recipe = load_recipe(ROOT / "recipes" / "mt003_soft.yaml")
        features = component("features", recipe.features.name)(recipe.features.model_dump(exclude={"name"}))
        model_block = recipe.model
    else:
        raise SystemExit(f"--models: unknown model '{name}' (tonami, mt003)")
    model = build_model(model_block, n_features=features.n_features, n_classes=N_CLASSES[name])
    return Pipeline(features, model).to(device), features


@dataclass
class Combination:
    model: str
    precision: str
    compiled: bool
    channels_last: bool
    pipeline: Pipeline
    optimizer: Any
    flops_per_clip: float
    rates: list[float] = field(default_factory=list)
    compile_status: str = "off"

    @property
    def label(self) -> str:
        return (f"{self.model} {self.precision}{' + channels_last' if self.channels_last else ''}"
                f"{' + compile' if self.compiled else ''}")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


WEIGHTING = component("weighting", "constant")({})


def train_step(combo: Combination, waveform: torch.Tensor, targets: dict[str, torch.Tensor]) -> None:
    """One step as ``jasc_core.training.step`` takes it: autocast around the model, losses in fp32."""
    combo.optimizer.zero_grad(set_to_none=True)
    with autocast_for(waveform.device, combo.precision):
        outputs = combo.pipeline(waveform)
    outputs = {name: output.float() for name, output in outputs.items()}
    frames = min(outputs["event"].shape[1], targets["event"].shape[1])
    losses = WEIGHTING.task_losses({"scene": outputs["scene"], "event": outputs["event"][:, :frames]},
                                   {"scene": targets["scene"], "event": targets["event"][:, :frames]})
    WEIGHTING.combine(losses, {}).backward()
    combo.optimizer.step()


def random_batch(combo: Combination, device: torch.device, batch: int, n_samples: int) -> tuple[Any, Any]:
    classes = N_CLASSES[combo.model]
    frames = combo.pipeline.features.num_frames(n_samples)
    generator = torch.Generator().manual_seed(0)
    waveform = (torch.randn(batch, n_samples, generator=generator) * 0.1).to(device)
    targets = {"scene": torch.randint(0, classes["scene"], (batch,), generator=generator).to(device),
               "event": (torch.rand(batch, frames, classes["event"], generator=generator) < 0.1).float().to(device)}
    return waveform, targets


def forward_flops_per_clip(pipeline: Pipeline, n_samples: int) -> float:
    # Counted on a CPU copy of one clip so that the training model and its device are left alone.
    cpu_model = copy.deepcopy(pipeline.model).to("cpu").float().eval()
    frames = pipeline.features.num_frames(n_samples)
    macs, _ = count_macs(cpu_model, torch.zeros(1, frames, pipeline.features.n_features))
    return 2.0 * macs


def matmul_flops(device: torch.device, dtype: torch.dtype, seconds: float) -> float:
    """Sustained FLOP/s of a square matmul (2 n^3 FLOPs per product)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        torch.matmul(a, b)
    sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        count += 1
        if device.type == "cuda" and count % 10:
            continue
        sync(device)
    sync(device)
    return 2 * n**3 * count / (time.perf_counter() - start)


def time_steps(combo: Combination, device: torch.device, batch: Any, steps: int) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(combo, *batch)
    sync(device)
    return len(batch[0]) * steps / (time.perf_counter() - start)


def endless(loader: Any) -> Any:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def measure_data_wait(combo: Combination, device: torch.device, batch: int, steps: int, workers: int,
                      minutes: float, cache_dir: str) -> dict[str, float]:
    from jasc_core.data.clips import clip_dataset
    from jasc_core.data.loaders import collate
    from jasc_core.model.pipeline import Labels

    preset = "tut-joint" if combo.model == "tonami" else "dcase-disjoint"
    dataset = component("dataset", "synthetic")({"preset": preset, "minutes": minutes,
                                                 "sample_rate": int(combo.pipeline.features.sample_rate),
                                                 "cache_dir": cache_dir})
    dataset.prepare()
    clips = dataset.load("train")
    ten = [i for i, clip in enumerate(clips) if clip.duration == 10.0]  # the labels are replaced below
    labels = Labels(scene=list(clips.scene_labels), event=list(clips.event_labels))
    data = torch.utils.data.Subset(clip_dataset(clips, dataset, combo.pipeline.features, labels, cache=False), ten)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers,
                                         collate_fn=collate, generator=torch.Generator().manual_seed(0),
                                         pin_memory=device.type == "cuda", drop_last=True)
    classes = N_CLASSES[combo.model]
    waiting = total = 0.0
    done = seen = 0
    batches = endless(loader)
    while done < steps + 1:
        t0 = time.perf_counter()
        cpu_batch = next(batches)
        moved = cpu_batch.to(device)
        t1 = time.perf_counter()
        n = len(cpu_batch.clip_ids)
        # Targets of the benchmark's class counts (the synthetic vocabularies differ from 003's ten classes).
        frames = combo.pipeline.features.num_frames(moved.waveform.shape[1])
        targets = {"scene": torch.zeros(n, dtype=torch.long, device=device),
                   "event": torch.zeros(n, frames, classes["event"], device=device)}
        train_step(combo, moved.waveform, targets)
        sync(device)
        t2 = time.perf_counter()
        if done > 0:  # the first batch includes worker start-up
            waiting, total, seen = waiting + t1 - t0, total + t2 - t0, seen + n
        done += 1
    return {"data_wait_share": waiting / total, "loader_clips_per_s": seen / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", default="tonami,mt003")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--compile", default="off,on", help="off, on, or both")
    parser.add_argument("--layouts", default="contiguous,channels_last", help="train.channels_last off/on")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per combination and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--matmul-seconds", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=6.0, help="synthetic audio for the data-wait measurement")
    parser.add_argument("--skip-data", action="store_true", help="skip the data-wait measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    try:
        device = resolve_device(args.device)
    except ConfigError as exc:  # --device cuda on a machine without one: one line, exit 2
        print(f"--device {args.device}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    torch.manual_seed(0)
    combos: list[Combination] = []
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            for layout, compiled in itertools.product(args.layouts.split(","), args.compile.split(",")):
                pipeline, features = build(model.strip(), device)
                n_samples = int(round(args.clip_seconds * features.sample_rate))
                flops = 3.0 * forward_flops_per_clip(pipeline, n_samples)
                use_channels_last(pipeline.model, layout == "channels_last")
                combo = Combination(model.strip(), resolve_precision(precision, device), compiled == "on",
                                    layout == "channels_last", pipeline,
                                    torch.optim.RAdam(pipeline.parameters(), lr=1e-3), flops)
                combo.compile_status = compile_models([pipeline.model], compiled == "on", device)
                pipeline.train()
                combos.append(combo)
    batches = {}
    warmup: dict[str, float] = {}
    for combo in combos:  # warm-up: allocator, cuDNN autotuning, compilation
        n_samples = int(round(args.clip_seconds * combo.pipeline.features.sample_rate))
        batches[combo.label] = random_batch(combo, device, args.batch_size, n_samples)
        start = time.perf_counter()
        for _ in range(2):
            train_step(combo, *batches[combo.label])
        sync(device)
        warmup[combo.label] = time.perf_counter() - start
    peaks: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for round_ in range(args.rounds):
        for combo in combos if round_ % 2 == 0 else combos[::-1]:
            combo.rates.append(time_steps(combo, device, batches[combo.label], args.steps))
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            peaks[name].append(matmul_flops(device, dtype, args.matmul_seconds))
    peak = {name: statistics.median(values) for name, values in peaks.items()}
    rows = []
    for combo in combos:
        rate = statistics.median(combo.rates)
        achieved = rate * combo.flops_per_clip
        rows.append({"model": combo.model, "precision": combo.precision, "compile": combo.compile_status,
                     "channels_last": combo.channels_last,
                     "clips_per_s": rate, "clips_per_s_rounds": combo.rates, "warmup_s": warmup[combo.label],
                     "train_gflop_per_clip": combo.flops_per_clip / 1e9, "achieved_gflop_per_s": achieved / 1e9,
                     "fraction_of_matmul": achieved / peak[combo.precision]})
    for model in {combo.model for combo in combos}:
        own = [row for row in rows if row["model"] == model]
        base = next((row for row in own if row["precision"] == "fp32" and row["compile"] == "off"
                     and not row["channels_last"]), None)
        for row in own:
            row["speedup_vs_fp32_eager"] = row["clips_per_s"] / base["clips_per_s"] if base else None
    report: dict[str, Any] = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(), "batch_size": args.batch_size, "clip_seconds": args.clip_seconds,
        "rounds": args.rounds, "steps_per_round": args.steps,
        "matmul_gflop_per_s": {name: value / 1e9 for name, value in peak.items()}, "rows": rows,
    }
    if not args.skip_data:
        report["data_wait"] = []
        with tempfile.TemporaryDirectory() as tmp:
            for model in dict.fromkeys(combo.model for combo in combos):
                fastest = max((c for c in combos if c.model == model), key=lambda c: statistics.median(c.rates))
                wait = measure_data_wait(fastest, device, args.batch_size, args.steps * 2, args.workers,
                                         args.minutes, str(Path(tmp) / "cache"))
                report["data_wait"].append({"combination": fastest.label, "workers": args.workers, **wait})
    if args.json:
        print(json.dumps(report, indent=2))
        return
    render(report)


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    peak = report["matmul_gflop_per_s"]
    table = Table(title=f"Training throughput: {report['device']} ({report['threads']} threads), batch "
                        f"{report['batch_size']} of {report['clip_seconds']:g}-s clips, median of "
                        f"{report['rounds']} rounds; matmul fp32 {peak['fp32']:.0f} GFLOP/s, bf16 "
                        f"{peak['bf16']:.0f} GFLOP/s")
    for column in ("model", "precision", "layout", "compile", "clips/s", "x fp32 eager", "GFLOP/s", "of matmul"):
        table.add_column(column, justify="left" if column in ("model", "precision", "layout", "compile") else "right")
    for row in report["rows"]:
        speedup = row["speedup_vs_fp32_eager"]
        table.add_row(row["model"], row["precision"], "channels_last" if row["channels_last"] else "contiguous",
                      row["compile"], f"{row['clips_per_s']:.2f}",
                      f"{speedup:.2f}" if speedup else "-", f"{row['achieved_gflop_per_s']:.0f}",
                      f"{100 * row['fraction_of_matmul']:.1f} %")
    console = Console()
    console.print(table)
    for wait in report.get("data_wait", []):
        console.print(f"data wait, {wait['combination']}, {wait['workers']} workers: "
                      f"{100 * wait['data_wait_share']:.1f} % of step time, {wait['loader_clips_per_s']:.2f} clips/s")


if __name__ == "__main__":
    main()
