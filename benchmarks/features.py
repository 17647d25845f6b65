"""Real-time factor of the logmel backends (torch.stft, nnAudio) and of librosa's melspectrogram on the same input.

    python benchmarks/features.py                       # 32 clips x 10 s at 44.1 kHz, CPU (and CUDA when present)
    python benchmarks/features.py --clips 8 --repeats 5 --devices cpu

The real-time factor (RTF) is seconds of audio turned into log-mel features per second of wall-clock time (higher
is faster). Every method computes the same features: 40-ms Hann window, 20-ms hop, n_fft 2048, 64 Slaney mel bands,
power 2, natural log with the same offset, float32. librosa runs on the CPU only (numpy), batched over the clips;
the ratios say how many times faster than librosa ("x librosa") and than the torch backend on the same device
("x torch") each method is (below 1: slower). Timings take the median of ``--repeats`` runs after one warm-up run
(which also builds CUDA's FFT plans); the methods run in turn, round robin, so that a change of the machine's load
hits all of them alike.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from jasc_features import LogMel


def median_seconds(runners: dict[tuple[str, str], tuple[Callable[[], object], Callable[[], None]]],
                   repeats: int) -> dict[tuple[str, str], float]:
    """Median wall time of each runner; the runs are interleaved (round robin) so that a change in the machine's load
    during the benchmark hits every method alike."""
    for run, synchronize in runners.values():  # warm-up
        run()
        synchronize()
    times: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
    for _ in range(repeats):
        for key, (run, synchronize) in runners.items():
            start = time.perf_counter()
            run()
            synchronize()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def librosa_runner(waveform: np.ndarray, extractor: LogMel) -> Callable[[], np.ndarray]:
    import librosa

    cfg = extractor.config

    def run() -> np.ndarray:
        mel = librosa.feature.melspectrogram(
            y=waveform, sr=extractor.sample_rate, n_fft=extractor.n_fft, hop_length=extractor.hop_length,
            win_length=extractor.win_length, window="hann", center=True, power=cfg.power, n_mels=cfg.n_mels,
            fmin=cfg.fmin, fmax=cfg.fmax, htk=cfg.mel_scale == "htk", norm="slaney", dtype=np.float32,
        )
        return np.log(mel + cfg.log_offset)

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32, help="clips per batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each clip in seconds")
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (median reported)")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--no-librosa", action="store_true", help="skip librosa")
    args = parser.parse_args(argv)

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    samples = round(args.seconds * args.sample_rate)
    audio_seconds = args.clips * samples / args.sample_rate
    waveform = 0.1 * torch.randn(args.clips, samples, generator=torch.Generator().manual_seed(0))
    block = {"sample_rate": args.sample_rate, "normalize": False}

    print(f"input: {args.clips} clips x {args.seconds:g} s at {args.sample_rate} Hz = {audio_seconds:g} s of audio; "
          f"median of {args.repeats} runs")
    print(f"host: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads" + (
              f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))

    runners: dict[tuple[str, str], tuple[Callable[[], object], Callable[[], None]]] = {}
    if not args.no_librosa:
        runners["cpu", "librosa"] = (librosa_runner(waveform.numpy(), LogMel(block)), lambda: None)
    for device_name in devices:
        device = torch.device(device_name)
        synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        batch = waveform.to(device)
        for backend in ("torch", "nnaudio"):
            extractor = LogMel({**block, "backend": backend}).to(device)

            def run(extractor: LogMel = extractor, batch: torch.Tensor = batch) -> torch.Tensor:
                with torch.inference_mode():
                    return extractor(batch)

            runners[device_name, backend] = (run, synchronize)
    rows = [(device, method, seconds) for (device, method), seconds in median_seconds(runners, args.repeats).items()]

    librosa_seconds = next((s for d, m, s in rows if m == "librosa"), None)
    torch_seconds = {d: s for d, m, s in rows if m == "torch"}
    header = f"{'device':<6} {'method':<8} {'seconds':>9} {'RTF (x real time)':>18} {'x librosa':>10} {'x torch':>8}"
    print(header)
    print("-" * len(header))
    for device_name, method, seconds in rows:
        rtf = audio_seconds / seconds
        vs_librosa = f"{librosa_seconds / seconds:.2f}x" if librosa_seconds else "-"
        vs_torch = f"{torch_seconds[device_name] / seconds:.2f}x" if device_name in torch_seconds else "-"
        print(f"{device_name:<6} {method:<8} {seconds:>9.4f} {rtf:>18.0f} {vs_librosa:>10} {vs_torch:>8}")


if __name__ == "__main__":
    main()
