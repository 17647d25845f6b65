"""Many files through one model at once (``jasc predict``): shared batches, decoding workers, streamed long files.

- **Batches across files**: the windows of consecutive files fill one batch (``batch_size`` windows), so a folder of
  10-s clips runs at the model's batch throughput, not one clip at a time. Each file's windows go to its own
  ``WindowCombiner`` (``jasc_core.inference.windows``) in start order, so the results are those of ``predict``
  file by file.
- **Decoding on worker processes**: files up to ``LONG_FILE_SECONDS`` are decoded, mixed to mono and resampled by
  ``workers`` processes (spawned: no torch in them), at most ``2 x workers`` files ahead of the model.
- **Bounded memory on long files**: a longer file is read block by block (``soundfile`` blocks of ``BLOCK_SECONDS``,
  resampled by a streaming ``soxr`` resampler, which gives the samples of a one-shot resampling), and its windows
  are cut from a rolling buffer; only its combined scores grow with its length (the frame track).
- A progress bar on stderr (files, audio hours) and a throughput figure at the end (``Throughput``).

A file that cannot be read is reported and skipped, as by ``predict_many``.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jasc_core.contract.json_types import JSONObject
from jasc_core.data.audio import read_audio, to_mono
from jasc_core.errors import DataError
from jasc_core.inference.windows import WindowCombiner, file_result

if TYPE_CHECKING:  # file_predictor.py imports this module; rich is imported when a bar is shown
    from rich.progress import Progress, TaskID

    from jasc_core.inference.file_predictor import FilePredictor

#: Files longer than this are streamed block by block in the main process instead of decoded whole by a worker.
LONG_FILE_SECONDS = 600.0
#: Seconds of source audio read at a time from a long file.
BLOCK_SECONDS = 60.0


@dataclass
class Throughput:
    """What a ``predict_files`` call did: files, audio seconds, windows and wall seconds."""

    files: int = 0
    audio_seconds: float = 0.0
    windows: int = 0
    wall_seconds: float = 0.0

    def line(self) -> str:
        rate = self.audio_seconds / max(self.wall_seconds, 1e-9)
        return (f"{self.files} files, {self.audio_seconds / 3600:.3f} h of audio in {self.wall_seconds:.1f} s: "
                f"{rate:.0f} audio-hours/hour, {self.files / max(self.wall_seconds, 1e-9):.2f} files/s, "
                f"{self.windows / max(self.wall_seconds, 1e-9):.1f} windows/s")


def audio_frames(path: Path) -> tuple[int, int]:
    """``(frames, sample rate)`` of a file without decoding it; ``DataError`` naming the file."""
    import soundfile

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable audio file ({exc})") from None
    if info.frames <= 0:
        raise DataError(f"{path}: no samples (0-length audio)")
    return int(info.frames), int(info.samplerate)


def resampled_length(frames: int, from_rate: int, to_rate: int) -> int:
    """Samples soxr gives for ``frames`` samples from ``from_rate`` to ``to_rate`` (one-shot or streamed)."""
    return frames if from_rate == to_rate else int(frames * to_rate / from_rate + 0.5)


def decode(path: Path, rate: int) -> np.ndarray:
    """A worker's job: the whole file as mono float32 at ``rate``."""
    return read_audio(path, rate)


def stream_mono(path: Path, rate: int, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Consecutive mono chunks of a file at ``rate``: soundfile blocks, each resampled by one soxr stream."""
    import soundfile

    with soundfile.SoundFile(str(path)) as audio:
        source_rate = audio.samplerate
        stream = None
        if source_rate != rate:
            import soxr

            stream = soxr.ResampleStream(source_rate, rate, 1, dtype="float32")
        block = max(1, int(block_seconds * source_rate))
        while True:
            data = audio.read(block, dtype="float32", always_2d=True)
            last = len(data) < block
            mono = to_mono(data)
            if not np.all(np.isfinite(mono)):
                raise DataError(f"{path}: the audio holds NaN or infinite samples")
            chunk = stream.resample_chunk(mono, last=last) if stream is not None else mono
            if len(chunk):
                yield np.asarray(chunk, dtype=np.float32)
            if last:
                return


def windows_from_chunks(chunks: Iterator[np.ndarray], starts: Sequence[int], length: int,
                        n_samples: int) -> Iterator[np.ndarray]:
    """The windows ``[start, start + length)`` of a stream of chunks, in start order, from a rolling buffer (a
    stream a sample short of ``n_samples`` is zero-padded at its end, one too long is cut)."""
    buffer = np.zeros(0, dtype=np.float32)
    offset = 0  # stream position of buffer[0]
    pending = deque(starts)
    exhausted = False
    while pending:
        start = pending[0]
        while not exhausted and offset + len(buffer) < min(start + length, n_samples):
            chunk = next(chunks, None)
            if chunk is None:
                exhausted = True
            else:
                buffer = np.concatenate([buffer, chunk])
        window = buffer[start - offset: start - offset + length]
        if len(window) < min(length, n_samples - start):
            window = np.pad(window, (0, min(length, n_samples - start) - len(window)))
        yield window
        pending.popleft()
        if pending:  # drop what no later window needs
            cut = min(pending[0] - offset, len(buffer))
            buffer, offset = buffer[cut:], offset + cut


@dataclass
class FileJob:
    """One file being predicted: its combiner and where its windows come from."""

    index: int
    path: Path
    combiner: WindowCombiner
    length: int
    windows: Iterator[np.ndarray] | None = None
    future: Future | None = None


class FileScheduler:
    """Opens files in order (decoding ahead on workers) and hands out their windows in order."""

    def __init__(self, predictor: FilePredictor, paths: Sequence[Path], workers: int, report: Callable[[str], None]) -> None:
        self.predictor = predictor
        self.paths = list(paths)
        self.report = report
        self.rate = predictor.grid.sample_rate
        self.pool = (ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 0 else None)
        self.ahead = max(1, 2 * workers)
        self.next_path = 0
        self.opened: deque[FileJob] = deque()
        self.skipped: list[Path] = []

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def open_more(self) -> None:
        """Open files until ``ahead`` are decoding or ready."""
        while self.next_path < len(self.paths) and len(self.opened) < self.ahead:
            index, path = self.next_path, self.paths[self.next_path]
            self.next_path += 1
            try:
                self.opened.append(self.open(index, path))
            except DataError as exc:
                self.skip(path, exc)

    def open(self, index: int, path: Path) -> FileJob:
        frames, source_rate = audio_frames(path)
        n = resampled_length(frames, source_rate, self.rate)
        predictor = self.predictor
        starts = predictor.grid.starts(n, predictor.window_seconds, predictor.hop_seconds)
        length = min(predictor.grid.window_samples(predictor.window_seconds), n)
        job = FileJob(index, path, WindowCombiner(predictor.tasks, predictor.grid, n, starts), length)
        if frames / source_rate > LONG_FILE_SECONDS or self.pool is None:
            job.windows = windows_from_chunks(stream_mono(path, self.rate), starts, length, n)
        else:
            job.future = self.pool.submit(decode, path, self.rate)
        return job

    def skip(self, path: Path, exc: Exception) -> None:
        self.skipped.append(path)
        self.report(f"skipped {path}: {exc}")

    def windows(self) -> Iterator[tuple[FileJob, np.ndarray]]:
        """Every window of every readable file, file after file."""
        self.open_more()
        while self.opened:
            job = self.opened.popleft()
            try:
                if job.future is not None:
                    waveform = job.future.result()
                    n = job.combiner.n_samples
                    waveform = np.pad(waveform[:n], (0, max(0, n - len(waveform))))
                    job.windows = (waveform[s: s + job.length] for s in job.combiner.starts)
                    job.future = None
                self.open_more()
                for window in job.windows:
                    yield job, window
            except DataError as exc:
                self.skip(job.path, exc)
            self.open_more()


def predict_files(predictor: FilePredictor, paths: Sequence[Path], report: Callable[[str], None], *, batch_size: int = 32,
                  workers: int = 2, progress: bool | None = None) -> tuple[list[JSONObject], list[Path],
                                                                           Throughput]:
    """Predict every file (module docstring); returns the results in input order, the skipped files, the figures."""
    started = time.perf_counter()
    scheduler = FileScheduler(predictor, paths, workers, report)
    results: dict[int, JSONObject] = {}
    stats = Throughput()
    bar, task = progress_bar(len(paths), progress)
    batch: list[tuple[FileJob, np.ndarray]] = []

    def flush() -> None:
        if not batch:
            return
        scored = predictor.score_batch(np.stack([window for _, window in batch]))
        first = 0
        while first < len(batch):
            job = batch[first][0]
            last = first
            while last < len(batch) and batch[last][0] is job:
                last += 1
            job.combiner.add({name: probs[first:last] for name, probs in scored.items()})
            stats.windows += last - first
            if job.combiner.done:
                results[job.index] = file_result(str(job.path), job.combiner.scores(), predictor.labels,
                                                 predictor.thresholds, predictor.to_events)
                stats.files += 1
                stats.audio_seconds += job.combiner.n_samples / predictor.grid.sample_rate
                if bar is not None:
                    bar.update(task, advance=1, description=f"predicting ({stats.audio_seconds / 3600:.2f} h)")
            first = last
        batch.clear()

    try:
        for job, window in scheduler.windows():
            if batch and len(window) != len(batch[0][1]):
                flush()  # a file shorter than a window: its one window is a batch of its own
            batch.append((job, window))
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        scheduler.close()
        if bar is not None:
            bar.stop()
    stats.wall_seconds = time.perf_counter() - started
    return [results[i] for i in sorted(results)], scheduler.skipped, stats


def progress_bar(total: int, progress: bool | None) -> tuple[Progress | None, TaskID | None]:
    """A rich progress bar on stderr (default: when stderr is a terminal and there is more than one file)."""
    show = (sys.stderr.isatty() and total > 1) if progress is None else progress
    if not show:
        return None, None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(transient=True, console=Console(stderr=True))
    bar.start()
    return bar, bar.add_task("predicting", total=total)
