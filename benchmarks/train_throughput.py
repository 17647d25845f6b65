"""Training throughput of the Tonami network (001 Table II): clips/s, achieved FLOP/s, and time waiting for data.

    python benchmarks/train_throughput.py [--device auto] [--batch-size 8] [--steps 10] [--json]

Three measurements in one run:

1. **compute**: training steps (log-mel features on the device, encoder + scene and event heads, losses, backward,
   RAdam step) on random waveforms already on the device: clips/s with no data loading at all;
2. **achieved FLOP/s** of those steps as a fraction of this machine's matmul FLOP/s, measured here by timing a large
   ``torch.matmul`` in the same dtype. Training FLOPs per clip are counted as 3 x forward FLOPs (backward ~ 2 x
   forward), forward FLOPs = 2 x the MACs of ``jasc_core.inference.complexity.count_macs`` (``FlopCounterMode`` plus the GRU
   formula); the log-mel front end is not counted;
3. **data wait**: the same steps fed by the real data path (synthetic tut-joint clips on disk, ``ClipDataset`` +
   ``DataLoader`` with ``--workers`` processes, no in-memory cache): the share of step time spent blocked on the
   loader.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

SCENES, EVENTS = 4, 25  # tut-joint vocabularies


def build(device: torch.device, sample_rate: int) -> tuple[Any, Any, Any]:
    from jasc_core import component
    from jasc_core.inference.pipeline import Pipeline, build_model

    features = component("features", "logmel")({"sample_rate": sample_rate, "n_mels": 64})
    model = build_model(
        {"encoder": {"name": "tonami_cnn"}, "heads": {"scene": {"name": "tonami_scene"}, "event": {"name": "bigru"}}},
        n_features=features.n_features, n_classes={"scene": SCENES, "event": EVENTS},
    )
    pipeline = Pipeline(features, model).to(device)
    weighting = component("weighting", "constant")({})
    optimizer = torch.optim.RAdam(pipeline.parameters(), lr=1e-3)
    return pipeline, weighting, optimizer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(pipeline: Any, weighting: Any, optimizer: Any, waveform: torch.Tensor, targets: dict[str, Any],
               amp: bool) -> None:
    from jasc_core.inference.device import autocast_for

    optimizer.zero_grad(set_to_none=True)
    with autocast_for(waveform.device, amp):
        outputs = pipeline(waveform)
    frames = min(outputs["event"].shape[1], targets["event"].shape[1])
    losses = weighting.task_losses(
        {"scene": outputs["scene"], "event": outputs["event"][:, :frames]},
        {"scene": targets["scene"], "event": targets["event"][:, :frames]},
    )
    weighting.combine(losses, {}).backward()
    optimizer.step()


def matmul_flops(device: torch.device, dtype: torch.dtype, seconds: float = 2.0) -> float:
    """Sustained FLOP/s of a square matmul (2 n^3 FLOPs per product)."""
    n = 4096 if device.type == "cuda" else 1024
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


def forward_flops_per_clip(pipeline: Any, n_samples: int) -> float:
    from jasc_core.inference.complexity import count_macs

    # Counted on a CPU copy of one clip so that the training model and its device are left alone.
    cpu_model = copy.deepcopy(pipeline.model).to("cpu").float().eval()
    frames = pipeline.features.num_frames(n_samples)
    macs, _ = count_macs(cpu_model, torch.zeros(1, frames, pipeline.features.n_features))
    return 2.0 * macs


def measure_compute(pipeline: Any, weighting: Any, optimizer: Any, device: torch.device, batch: int, steps: int,
                    n_samples: int, frames: int, amp: bool) -> float:
    waveform = torch.randn(batch, n_samples, device=device) * 0.1
    targets = {
        "scene": torch.randint(0, SCENES, (batch,), device=device),
        "event": (torch.rand(batch, frames, EVENTS, device=device) < 0.1).float(),
    }
    pipeline.train()
    for _ in range(2):  # warm-up (allocator, cuDNN autotuning)
        train_step(pipeline, weighting, optimizer, waveform, targets, amp)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(pipeline, weighting, optimizer, waveform, targets, amp)
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def measure_data_wait(pipeline: Any, weighting: Any, optimizer: Any, device: torch.device, batch: int, steps: int,
                      workers: int, sample_rate: int, minutes: float, cache_dir: str, amp: bool) -> dict[str, float]:
    from jasc_core import component
    from jasc_core.inference.clips import clip_dataset, collate, to_device
    from jasc_core.inference.pipeline import Labels

    dataset = component("dataset", "synthetic")(
        {"preset": "tut-joint", "minutes": minutes, "sample_rate": sample_rate, "cache_dir": cache_dir}
    )
    dataset.prepare()
    clips = dataset.load("train")
    labels = Labels(scene=list(clips.scene_labels), event=list(clips.event_labels))  # tut-joint: one clip length
    data = clip_dataset(clips, dataset, pipeline.features, labels, cache=False)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(0), pin_memory=device.type == "cuda")
    pipeline.train()
    waiting = total = 0.0
    done = clips_seen = 0
    iterator = iter(loader)
    while done < steps + 1:
        t0 = time.perf_counter()
        try:
            cpu_batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            cpu_batch = next(iterator)
        gpu_batch = to_device(cpu_batch, device)
        t1 = time.perf_counter()
        targets = {"scene": gpu_batch["targets"]["scene"], "event": gpu_batch["targets"]["event"]}
        train_step(pipeline, weighting, optimizer, gpu_batch["waveform"], targets, amp)
        sync(device)
        t2 = time.perf_counter()
        if done > 0:  # the first batch includes worker start-up
            waiting += t1 - t0
            total += t2 - t0
            clips_seen += len(cpu_batch["clip_ids"])
        done += 1
    return {"data_wait_share": waiting / total, "loader_clips_per_s": clips_seen / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=4.0, help="synthetic audio for the data-wait measurement")
    parser.add_argument("--cache-dir", default=None, help="synthetic data cache (default: a temporary folder)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA only)")
    parser.add_argument("--skip-data", action="store_true", help="skip the data-wait measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from jasc_core.inference.device import resolve_device

    device = resolve_device(args.device)
    torch.manual_seed(0)
    pipeline, weighting, optimizer = build(device, args.sample_rate)
    n_samples = int(round(args.clip_seconds * args.sample_rate))
    frames = pipeline.features.num_frames(n_samples)
    clips_per_s = measure_compute(pipeline, weighting, optimizer, device, args.batch_size, args.steps, n_samples,
                                  frames, args.amp)
    train_flops = 3.0 * forward_flops_per_clip(pipeline, n_samples)
    dtype = torch.bfloat16 if args.amp and device.type == "cuda" else torch.float32
    peak = matmul_flops(device, dtype)
    report: dict[str, Any] = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "clip_seconds": args.clip_seconds,
        "sample_rate": args.sample_rate,
        "amp_bf16": bool(args.amp and device.type == "cuda"),
        "train_clips_per_s": clips_per_s,
        "train_flops_per_clip": train_flops,
        "achieved_flops_per_s": clips_per_s * train_flops,
        "matmul_flops_per_s": peak,
        "fraction_of_matmul": clips_per_s * train_flops / peak,
    }
    if not args.skip_data:
        with tempfile.TemporaryDirectory() as tmp:
            cache = args.cache_dir or str(Path(tmp) / "cache")
            report.update(measure_data_wait(pipeline, weighting, optimizer, device, args.batch_size, args.steps,
                                            args.workers, args.sample_rate, args.minutes, cache, args.amp))
            report["workers"] = args.workers
    if args.json:
        print(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Tonami network training throughput")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("device", f"{report['device']} ({report['threads']} threads)")
    table.add_row("clip", f"{args.clip_seconds:g} s at {args.sample_rate} Hz, batch {args.batch_size}")
    table.add_row("training clips/s (data on device)", f"{clips_per_s:.2f}")
    table.add_row("training FLOPs per clip (3 x forward)", f"{train_flops / 1e9:.2f} G")
    table.add_row("achieved FLOP/s", f"{report['achieved_flops_per_s'] / 1e9:.1f} G")
    table.add_row(f"matmul FLOP/s ({str(dtype).removeprefix('torch.')})", f"{peak / 1e9:.1f} G")
    table.add_row("fraction of matmul FLOP/s", f"{100 * report['fraction_of_matmul']:.1f} %")
    if "data_wait_share" in report:
        table.add_row(f"clips/s with the data loader ({args.workers} workers)", f"{report['loader_clips_per_s']:.2f}")
        table.add_row("share of step time waiting for data", f"{100 * report['data_wait_share']:.1f} %")
    Console().print(table)


if __name__ == "__main__":
    main()
