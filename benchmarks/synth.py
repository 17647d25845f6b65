"""Real-time factor of the synthetic soundscape generator (one process, one core).

    python benchmarks/synth.py [--preset tut-joint] [--minutes 5] [--sample-rate 44100]

Prints wall-clock and CPU real-time factors for the whole dataset write (synthesis, 16-bit WAV writing, annotation
and manifest with checksums) into a temporary folder; CPU time is the fairer figure on a shared machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from jasc_datasets.synthetic import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tut-joint", choices=["tut-joint", "dcase-disjoint"])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        synthesize(args.preset, Path(tmp) / "data", args.minutes, args.seed, args.sample_rate)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    audio = args.minutes * 60.0
    print(f"preset {args.preset}, {args.minutes:g} min at {args.sample_rate} Hz")
    print(f"wall {wall:7.2f} s   real-time factor {audio / wall:7.1f}x")
    print(f"cpu  {cpu:7.2f} s   real-time factor {audio / cpu:7.1f}x")


if __name__ == "__main__":
    main()
