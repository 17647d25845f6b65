"""Data at scale: peak memory, data wait and clips/s of training on hours of audio, with and without the caches.

    python benchmarks/scale.py --hours 2 [--source-rate 44100] [--workers 2] [--steps 40] [--batch-size 8]
        [--configs none,memory,disk] [--cache-memory-mb 2048] [--data-dir DIR] [--json]

1. Synthesises ``--hours`` of tut-joint audio (10-s clips, train split) at ``--source-rate`` on disk in ``--data-dir``
   (reused when it is there), so that every read decodes a WAV file and resamples it to the features' 16 kHz (soxr),
   as DESED's 44.1 kHz files are.
2. Runs each configuration in a process of its own (so peak memory is its own), the training stream being a
   ``DataLoader`` with ``--workers`` persistent processes over a ``ClipDataset``, as ``jasc run`` builds it:
   - ``none``: no cache (every epoch decodes and resamples every clip again);
   - ``memory``: the in-memory cache within ``--cache-memory-mb`` (``train.cache_memory_mb``, shared by the workers);
   - ``disk``: the on-disk cache (``train.disk_cache``; built first, its build time is reported) plus the memory cache.
   Each process reads one full epoch through the loader without training (read clips/s; fills the caches), then
   trains ``--steps`` steps of the quickstart's reduced Tonami network (bf16 + channels_last where the CPU has
   native bf16) fed by the loader: clips/s and the share of step time spent waiting for a batch.
3. Peak memory: the process tree's (main + loader workers) resident set summed, sampled every 0.2 s from
   /proc/<pid>/smaps_rollup (``Rss``, which counts pages the forked workers share once per process, so an upper
   bound; and ``Pss``, which splits shared pages between them, so their true sum).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch
from train_throughput import Combination, endless, train_step  # this folder: the same training step

from jasc_core import component
from jasc_core.data.cache_fill import build_audio_cache
from jasc_core.data.clips import clip_dataset
from jasc_core.data.loaders import collate
from jasc_core.model.device import resolve_precision
from jasc_core.model.pipeline import Labels, Pipeline, build_model
from jasc_core.training.compile import use_channels_last

QUICKSTART_FEATURES = {"sample_rate": 16000, "n_mels": 64, "win_ms": 40, "hop_ms": 40}
QUICKSTART_MODEL = {"encoder": {"name": "tonami_cnn", "channels": [32, 32, 32]},
                    "heads": {"scene": {"name": "tonami_scene", "channels": [64, 64]},
                              "event": {"name": "bigru", "dropout": 0.0}}}


def dataset_for(args: argparse.Namespace) -> Any:
    return component("dataset", "synthetic")({"preset": "tut-joint", "minutes": args.hours * 60.0,
                                              "sample_rate": args.source_rate, "cache_dir": args.data_dir})


class MemorySampler:
    """Peak of the summed Rss and Pss (MB) of this process and its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak_rss, self.peak_pss = every, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = pss = 0.0
            for pid in tree(os.getpid()):
                values = smaps_rollup(pid)
                rss, pss = rss + values.get("Rss", 0.0), pss + values.get("Pss", 0.0)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(self.every)


def tree(pid: int) -> list[int]:
    pids, index = [pid], 0
    while index < len(pids):
        try:
            for task in os.listdir(f"/proc/{pids[index]}/task"):
                text = Path(f"/proc/{pids[index]}/task/{task}/children").read_text()
                pids += [int(child) for child in text.split()]
        except OSError:
            pass
        index += 1
    return pids


def smaps_rollup(pid: int) -> dict[str, float]:
    """``Rss`` and ``Pss`` of a process in MB (empty when it has gone)."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        parts = line.split()
        if parts and parts[0].rstrip(":") in ("Rss", "Pss"):
            values[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return values


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration, in this process (see the module docstring)."""
    torch.manual_seed(0)
    device = torch.device("cpu")
    precision = resolve_precision("auto", device)
    features = component("features", "logmel")(QUICKSTART_FEATURES)
    dataset = dataset_for(args)
    dataset.prepare()
    clips = dataset.load("train")
    labels = Labels(scene=list(clips.scene_labels), event=list(clips.event_labels))
    config = args.child
    disk = args.audio_cache_dir if config == "disk" else None
    report: dict[str, Any] = {"config": config, "clips": len(clips), "hours": sum(c.duration for c in clips) / 3600,
                              "precision": precision}
    with MemorySampler() as memory:
        data = clip_dataset(clips, dataset, features, labels, cache=config != "none",
                            cache_bytes=int(args.cache_memory_mb * 2**20), disk_cache_dir=disk)
        if disk is not None:
            start = time.perf_counter()
            report["disk_cache_build"] = build_audio_cache([data], args.workers, progress=False)
            report["disk_cache_build"]["seconds"] = time.perf_counter() - start
        loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True, collate_fn=collate,
                                             num_workers=args.workers, persistent_workers=args.workers > 0,
                                             generator=torch.Generator().manual_seed(0), drop_last=True)
        start, seen = time.perf_counter(), 0
        for batch in loader:  # epoch 1 without training: read throughput, caches filled
            seen += len(batch.clip_ids)
        report["read_clips_per_s"] = seen / (time.perf_counter() - start)
        features.fit_normalization(iter([batch.waveform]))
        model = build_model(QUICKSTART_MODEL, n_features=features.n_features,
                            n_classes={"scene": len(labels["scene"]), "event": len(labels["event"])})
        pipeline = Pipeline(features, model).train()
        use_channels_last(model, precision == "bf16")  # the fastest CPU combination of train_throughput.py
        combo = Combination("quickstart", precision, False, precision == "bf16", pipeline,
                            torch.optim.RAdam(pipeline.parameters(), lr=1e-3), flops_per_clip=0.0)
        waiting = total = 0.0
        done = trained = 0
        batches = endless(loader)
        while done < args.steps + 1:
            t0 = time.perf_counter()
            batch = next(batches)
            t1 = time.perf_counter()
            train_step(combo, batch.waveform, {"scene": batch.targets["scene"],
                                                  "event": batch.targets["event"]})
            t2 = time.perf_counter()
            if done > 0:  # the first step includes the epoch's worker hand-over
                waiting, total, trained = waiting + t1 - t0, total + t2 - t0, trained + len(batch.clip_ids)
            done += 1
        report.update(train_clips_per_s=trained / total, data_wait_share=waiting / total, steps=args.steps)
        del batches, loader
    report.update(peak_rss_mb=memory.peak_rss, peak_pss_mb=memory.peak_pss,
                  main_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0, help="hours of synthetic audio (the issue asks 20)")
    parser.add_argument("--source-rate", type=int, default=44100, help="sample rate of the audio files")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40, help="training steps measured per configuration")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--configs", default="none,memory,disk")
    parser.add_argument("--cache-memory-mb", type=float, default=2048.0)
    parser.add_argument("--data-dir", default=None, help="where the synthetic audio lives (default: a temp folder)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--audio-cache-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        args.data_dir = args.data_dir or str(Path(tmp) / "data")
        start = time.perf_counter()
        dataset = dataset_for(args)
        dataset.prepare()
        synthesis = time.perf_counter() - start
        files = [p for p in Path(args.data_dir).rglob("*.wav")]
        report: dict[str, Any] = {
            "hours_requested": args.hours, "source_rate": args.source_rate, "workers": args.workers,
            "cache_memory_mb": args.cache_memory_mb, "synthesis_s": synthesis,
            "audio_gb_on_disk": sum(p.stat().st_size for p in files) / 1e9, "runs": []}
        for config in args.configs.split(","):
            command = [sys.executable, __file__, "--child", config, "--hours", str(args.hours),
                       "--source-rate", str(args.source_rate), "--workers", str(args.workers),
                       "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                       "--cache-memory-mb", str(args.cache_memory_mb), "--data-dir", args.data_dir,
                       "--audio-cache-dir", str(Path(tmp) / "audio_cache")]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"configuration {config} failed:\n{done.stderr[-3000:]}")
            report["runs"].append(json.loads(done.stdout.strip().splitlines()[-1]))
        cache_files = list((Path(tmp) / "audio_cache").rglob("*.npy"))
        report["disk_cache_gb"] = sum(p.stat().st_size for p in cache_files) / 1e9
    if args.json:
        print(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['runs'][0]['hours']:.2f} h of {args.source_rate} Hz audio "
                        f"({report['audio_gb_on_disk']:.2f} GB), {args.workers} workers, memory budget "
                        f"{args.cache_memory_mb:g} MB")
    for column in ("cache", "read clips/s", "train clips/s", "data wait", "peak RSS (sum)", "peak PSS (sum)"):
        table.add_column(column, justify="left" if column == "cache" else "right")
    for run in report["runs"]:
        table.add_row(run["config"], f"{run['read_clips_per_s']:.1f}", f"{run['train_clips_per_s']:.2f}",
                      f"{100 * run['data_wait_share']:.1f} %", f"{run['peak_rss_mb']:.0f} MB",
                      f"{run['peak_pss_mb']:.0f} MB")
    Console().print(table)


if __name__ == "__main__":
    main()
