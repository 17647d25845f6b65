"""Inference speed on one CPU thread: PyTorch eager vs onnxruntime fp32 vs int8, against the machine's limit.

    python benchmarks/inference.py                                  # quickstart, Table II Tonami, 003's MT model
    python benchmarks/inference.py --recipes recipes/mt003_soft.yaml --seconds 10 --repeats 20

For each recipe the model is built with random weights (speed does not depend on their values; class counts as the
recipe states them, else 001's 4 scenes / 25 events) and exported as ``jasc export`` does (the log-mel front end in
the graph, its STFT as ONNX's ``STFT``; int8: static QDQ calibrated on ``--calibration-clips`` random waveforms,
which sets ranges no worse than real clips for speed purposes). Every engine runs the whole pipeline, waveform ->
probabilities, on one window of ``--seconds`` (batch 1) in a fresh child process with one thread
(``torch.set_num_threads(1)``; onnxruntime ``intra_op_num_threads=1``): the real-time factor (RTF) is seconds of
audio per second of wall time (higher is faster; the median of ``--repeats`` runs after two warm-up runs), and the
peak memory is the child's peak resident set size (``VmHWM``), runtime imports included (the onnxruntime children
never import torch).

**The limit**: the model's multiply-adds per second of audio (``jasc profile``'s convention: conv, linear and RNN
matrix products, the front end not counted) against a single-thread fp32 matrix product timed here (``torch.mm`` of
1024 x 1024, ``--matmul-seconds``): ``limit RTF = matmul FLOP/s / (2 x MACs per audio second)``. Each engine's
share is its RTF over that limit (int8 can pass 100 %: its integer products are faster than the fp32 matmul).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = ["recipes/quickstart.yaml", "recipes/tonami_conventional.yaml", "recipes/mt003_soft.yaml"]
ENGINES = ["torch", "onnx-fp32", "onnx-int8"]


def timed(run, repeats: int) -> float:
    """Median seconds of ``run()`` after two warm-up calls."""
    run()
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child(engine: str, recipe: str, model_dir: str, samples: int, repeats: int) -> dict:
    """One engine in this (fresh) process: median seconds per window and peak RSS."""
    import numpy as np

    waveform = (np.random.default_rng(0).standard_normal((1, samples)) * 0.1).astype(np.float32)
    if engine == "torch":
        import torch

        torch.set_num_threads(1)
        from jasc_core.contract.tasks import TASK_DESCRIPTIONS
        from jasc_core.inference.export import ProbabilityGraph

        pipeline = build(recipe, exportable=False)
        produced = pipeline(torch.zeros(1, samples))
        graph = ProbabilityGraph(pipeline, [n for t in pipeline.tasks for n in TASK_DESCRIPTIONS[t].output_names()
                                            if n in produced]).eval()
        x = torch.from_numpy(waveform)

        def run():
            with torch.inference_mode():
                graph(x)
    else:
        from jasc_core.inference.onnx_files import onnx_session

        name = "model.onnx" if engine == "onnx-fp32" else "model.int8.onnx"
        session = onnx_session(Path(model_dir) / name, threads=1)

        def run():
            session.run(None, {"waveform": waveform})
    seconds = timed(run, repeats)
    return {"seconds": seconds, "peak_mib": peak_rss_kib() / 1024, "torch_imported": "torch" in sys.modules}


def peak_rss_kib() -> int:
    """This process's peak resident set size: VmHWM (Linux; reset by exec, unlike ru_maxrss, which keeps the parent's
    peak at fork), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def build(recipe_path: str, exportable: bool):
    """The recipe's pipeline with random weights, eval mode; ``exportable``: on the convolutional STFT backend."""
    from jasc_core.inference.export import exportable_recipe
    from jasc_core.model.class_counts import DEFAULT_N_CLASSES
    from jasc_core.model.pipeline import Labels, build_pipeline
    from jasc_core.recipes.model import load_recipe

    recipe = load_recipe(recipe_path)
    recipe = exportable_recipe(recipe) if exportable else recipe
    heads = {task: block for task, block in recipe.model.heads if block is not None}
    labels = Labels({task: [f"{task}{i}" for i in range(getattr(block, "n_classes", None) or DEFAULT_N_CLASSES[task])]
                     for task, block in heads.items()})
    return build_pipeline(recipe, labels, list(heads)).eval()


def export(recipe_path: str, folder: Path, seconds: float, calibration_clips: int) -> tuple[int, dict]:
    """fp32 and int8 ONNX files of the recipe's model; its parameters and MACs per second of audio."""
    import numpy as np
    import torch

    from jasc_core.inference.export import trace_to_onnx
    from jasc_core.inference.quantize import quantize_int8
    from jasc_core.model.complexity import count_macs

    pipeline = build(recipe_path, exportable=True)
    frame_hop = int(pipeline.features.hop_length)
    samples = max(1, round(seconds * pipeline.features.sample_rate) // frame_hop) * frame_hop
    folder.mkdir(parents=True, exist_ok=True)
    trace_to_onnx(pipeline, samples, folder / "model.onnx")
    calibration = (np.random.default_rng(1).standard_normal((calibration_clips, samples)) * 0.1).astype(np.float32)
    quantize_int8(folder / "model.onnx", folder / "model.int8.onnx", calibration)
    with torch.no_grad():
        macs, _ = count_macs(pipeline.model, pipeline.features(torch.zeros(1, samples)))
    params = sum(p.numel() for p in pipeline.model.parameters())
    sizes = {name: (folder / name).stat().st_size for name in ("model.onnx", "model.int8.onnx")}
    return samples, {"params": params, "sample_rate": int(pipeline.features.sample_rate), "bytes": sizes,
                     "macs_per_audio_second": macs * pipeline.features.sample_rate / samples}


def matmul_gflops(seconds: float, size: int = 1024) -> float:
    """Single-thread fp32 ``torch.mm`` GFLOP/s: the best of repeated products over ``seconds``."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end or best == float("inf"):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=RECIPES)
    parser.add_argument("--seconds", type=float, default=10.0, help="window length (audio seconds per run)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--matmul-seconds", type=float, default=3.0, help="time spent measuring the matmul limit")
    parser.add_argument("--calibration-clips", type=int, default=8, help="random waveforms int8 is calibrated on")
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "RECIPE", "DIR", "SAMPLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, recipe, folder, samples = args.child
        print(json.dumps(child(engine, recipe, folder, int(samples), args.repeats)))
        return

    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    gflops = matmul_gflops(args.matmul_seconds)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            folder = Path(tmp) / Path(recipe).stem
            samples, info = export(recipe, folder, args.seconds, args.calibration_clips)
            limit = gflops * 1e9 / (2 * info["macs_per_audio_second"])
            for engine in ENGINES:
                done = subprocess.run(
                    [sys.executable, __file__, "--repeats", str(args.repeats), "--child", engine, recipe,
                     str(folder), str(samples)], capture_output=True, text=True, env=env, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"{engine} on {recipe} failed:\n{done.stderr[-2000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                audio = samples / info["sample_rate"]
                size = {"torch": None, "onnx-fp32": info["bytes"]["model.onnx"],
                        "onnx-int8": info["bytes"]["model.int8.onnx"]}[engine]
                rtf = audio / result["seconds"]
                rows.append({"recipe": Path(recipe).stem, "params": info["params"], "engine": engine, "rtf": rtf,
                             "ms_per_window": 1000 * result["seconds"], "peak_mib": result["peak_mib"],
                             "file_mb": size / 1e6 if size else None, "torch_imported": result["torch_imported"],
                             "macs_per_audio_second": info["macs_per_audio_second"], "limit_rtf": limit,
                             "share_of_limit": rtf / limit})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"{cpu_name()}, 1 thread, batch 1, {args.seconds:g}-s windows, median of {args.repeats}; "
          f"single-thread fp32 matmul {gflops:.1f} GFLOP/s")
    print("| recipe | params | M MACs / audio s | limit RTF | engine | RTF | share of limit | ms per window | "
          "peak RSS (MiB) | model file (MB) |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        size = f"{row['file_mb']:.2f}" if row["file_mb"] else "-"
        print(f"| {row['recipe']} | {row['params']:,} | {row['macs_per_audio_second'] / 1e6:.1f} | "
              f"{row['limit_rtf']:.0f} | {row['engine']} | {row['rtf']:.1f} | {100 * row['share_of_limit']:.1f} % | "
              f"{row['ms_per_window']:.1f} | {row['peak_mib']:.0f} | {size} |")


if __name__ == "__main__":
    main()
