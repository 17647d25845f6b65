"""Inference speed on one CPU thread: PyTorch eager vs onnxruntime fp32 vs int8, against the machine's limit.

    python benchmarks/inference.py                                  # quickstart, Table II Tonami, 003's MT model
    python benchmarks/inference.py --recipes recipes/mt003_soft.yaml --seconds 10 --repeats 20

For each recipe the model is built with random weights (speed does not depend on their values; class counts as the
recipe states them, else 001's 4 scenes / 25 events) and exported as ``jasc export`` does (the log-mel front end in
the graph, its power spectrum and mel projection as a two-step matrix-product FFT; int8: static QDQ calibrated on
``--calibration-clips`` random waveforms, which sets ranges no worse than real clips for speed purposes). Every engine runs the whole pipeline, waveform ->
probabilities, on one window of ``--seconds`` (batch 1) in a fresh child process with one thread
(``torch.set_num_threads(1)``; onnxruntime ``intra_op_num_threads=1``): the real-time factor (RTF) is seconds of
audio per second of wall time (higher is faster; the median of ``--repeats`` runs after two warm-up runs), and the
peak memory is the child's peak resident set size (``VmHWM``), runtime imports included (the onnxruntime children
never import torch).

**The limit**: the model's multiply-adds per second of audio (``jasc profile``'s convention: conv, linear and RNN
matrix products, the front end not counted) against a single-thread fp32 matrix product timed here (``torch.mm`` of
1024 x 1024, ``--matmul-seconds``): ``limit RTF = matmul FLOP/s / (2 x MACs per audio second)``. Each engine's
share is its RTF over that limit (int8 can pass 100 %: its integer products are faster than the fp32 matmul).

**The front end alone** (``--front-end-repeats``, 0 to skip): the power spectrum and mel projection of one window,
on the same frames, as onnxruntime's ``STFT`` operator, a dense DFT ``MatMul``, the export's two-step FFT, numpy's
``rfft`` and ``torch.stft``, with each one's largest error against a float64 ``rfft``.
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


def front_end_graphs(length: int, frames: int, hop: int, window, mel) -> dict:
    """ONNX graphs of ``x [1, 1, length] -> |STFT|^2 @ mel [1, frames, mels]``: onnxruntime's STFT operator, the dense
    DFT as one MatMul on the frames, and the two-step FFT the export uses (``jasc_core.inference.onnx_fft``)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from jasc_core.inference.onnx_fft import fft_mel_nodes

    n_fft = len(window)

    def const(name, value, dtype=np.float32):
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    def model(nodes, inits):
        graph = helper.make_graph(nodes, "front_end", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                      [1, 1, length])],
                                  [helper.make_tensor_value_info("mel", TensorProto.FLOAT, None)], inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    stft = model([helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
                  helper.make_node("STFT", ["xt", "step", "window", "n"], ["spec"], onesided=1),
                  helper.make_node("Mul", ["spec", "spec"], ["squares"]),
                  helper.make_node("ReduceSum", ["squares", "last"], ["power"], keepdims=0),
                  helper.make_node("MatMul", ["power", "basis"], ["mel"])],
                 [const("step", hop, np.int64), const("window", window), const("n", n_fft, np.int64),
                  const("last", [-1], np.int64), const("basis", mel)])
    # Dense DFT: frames as rows of hop-wide chunks side by side (no per-sample gather), times [width, 2 bins].
    chunks = -(-n_fft // hop)
    rows, bins = frames + chunks - 1, n_fft // 2 + 1
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["xf"]), helper.make_node("Pad", ["xf", "pads"], ["xp"]),
             helper.make_node("Reshape", ["xp", "shape"], ["xm"])]
    inits = [const("flat", [0, -1], np.int64), const("pads", [0, 0, 0, max(0, rows * hop - length)], np.int64),
             const("shape", [0, rows, hop], np.int64), const("axis1", [1], np.int64)]
    for j in range(chunks):
        inits += [const(f"start{j}", [j], np.int64), const(f"end{j}", [j + frames], np.int64)]
        nodes.append(helper.make_node("Slice", ["xm", f"start{j}", f"end{j}", "axis1"], [f"chunk{j}"]))
    n, k = np.arange(chunks * hop), np.arange(bins)
    padded_window = np.zeros(chunks * hop)
    padded_window[:n_fft] = window
    angles = 2 * np.pi * np.outer(n, k) / n_fft
    dft = np.concatenate([padded_window[:, None] * np.cos(angles), -padded_window[:, None] * np.sin(angles)], 1)
    nodes += [helper.make_node("Concat", [f"chunk{j}" for j in range(chunks)], ["framed"], axis=2),
              helper.make_node("MatMul", ["framed", "dft"], ["parts"]),
              helper.make_node("Mul", ["parts", "parts"], ["squares"]),
              helper.make_node("Slice", ["squares", "zero", "bins", "last"], ["re2"]),
              helper.make_node("Slice", ["squares", "bins", "bins2", "last"], ["im2"]),
              helper.make_node("Add", ["re2", "im2"], ["power"]), helper.make_node("MatMul", ["power", "basis"], ["mel"])]
    inits += [const("dft", dft), const("zero", [0], np.int64), const("bins", [bins], np.int64),
              const("bins2", [2 * bins], np.int64), const("last", [-1], np.int64), const("basis", mel)]
    fft_nodes, fft_inits = fft_mel_nodes("x", length, frames, window, hop, mel, "mel", "fft", "/front_end")
    return {"onnx STFT operator": stft, "onnx dense DFT MatMul": model(nodes, inits),
            "onnx two-step FFT MatMul (export)": model(fft_nodes, fft_inits)}


def front_end_rows(recipe_path: str, samples: int, repeats: int) -> list[dict]:
    """The log-mel front end alone (power spectrum + mel, no log), one thread, on the same padded waveform: the
    ONNX graphs of ``front_end_graphs``, numpy's rfft and torch.stft; ms per window and max error vs float64."""
    import numpy as np
    import torch

    from jasc_core.inference.onnx_files import onnx_session

    features = build(recipe_path, exportable=False).features
    if not all(hasattr(features, name) for name in ("n_fft", "hop_length", "mel_basis", "_padded")):
        return []
    n_fft, hop = int(features.n_fft), int(features.hop_length)
    waveform = torch.from_numpy((np.random.default_rng(0).standard_normal((1, samples)) * 0.1).astype(np.float32))
    x = features._padded(waveform).numpy()
    frames = (x.shape[-1] - n_fft) // hop + 1
    window = np.zeros(n_fft, dtype=np.float32)  # the window centred in n_fft, as the features use it
    start = (n_fft - features.win_length) // 2
    window[start: start + features.win_length] = features.window.numpy()
    mel = features.mel_basis.numpy().T.copy()
    framed = np.lib.stride_tricks.sliding_window_view(x[0, 0], n_fft)[::hop][:frames]
    reference = (np.abs(np.fft.rfft(framed.astype(np.float64) * window, axis=1)) ** 2) @ mel.astype(np.float64)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in front_end_graphs(x.shape[-1], frames, hop, window, mel).items():
            (Path(tmp) / "m.onnx").write_bytes(model.SerializeToString())
            session = onnx_session(Path(tmp) / "m.onnx", threads=1)
            runs[name] = lambda s=session: s.run(None, {"x": x})[0][0]
    runs["numpy rfft"] = lambda: (np.abs(np.fft.rfft(np.lib.stride_tricks.sliding_window_view(x[0, 0], n_fft)[::hop]
                                                     [:frames] * window, axis=1)) ** 2).astype(np.float32) @ mel
    signal, torch_window, torch_mel = torch.from_numpy(x[:, 0]), torch.from_numpy(window), torch.from_numpy(mel)

    def torch_stft():
        with torch.inference_mode():
            spec = torch.stft(signal, n_fft, hop, n_fft, torch_window, center=False, return_complex=True)
            return (torch.view_as_real(spec.transpose(1, 2)).square().sum(-1) @ torch_mel)[0].numpy()

    runs["torch.stft"] = torch_stft
    return [{"recipe": Path(recipe_path).stem, "front_end": name, "ms": 1000 * timed(run, repeats),
             "max_rel_error": float(np.abs(run() - reference).max() / np.abs(reference).max())}
            for name, run in runs.items()]


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
    parser.add_argument("--front-end-repeats", type=int, default=5,
                        help="runs of each front end alone (ONNX STFT operator, dense DFT, two-step FFT, numpy, "
                             "torch); 0: skip")
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "RECIPE", "DIR", "SAMPLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, recipe, folder, samples = args.child
        print(json.dumps(child(engine, recipe, folder, int(samples), args.repeats)))
        return

    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    gflops = matmul_gflops(args.matmul_seconds)
    rows, front_ends = [], []
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
            if args.front_end_repeats:
                front_ends += front_end_rows(recipe, samples, args.front_end_repeats)
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
    if front_ends:
        print(f"\nThe front end alone (power spectrum and mel, same frames, 1 thread, median of "
              f"{args.front_end_repeats}; error: max |x - float64 rfft| / max |x|):")
        print("| recipe | front end | ms per window | max relative error |\n|---|---|---:|---:|")
        for row in front_ends:
            print(f"| {row['recipe']} | {row['front_end']} | {row['ms']:.1f} | {row['max_rel_error']:.1e} |")


if __name__ == "__main__":
    main()
