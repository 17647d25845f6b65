"""jasc for users of trained models: ``jasc.load(run_dir)`` gives a predictor for audio files and waveforms.

    import jasc
    model = jasc.load("runs/quickstart-20260101-120000")          # the run's best student model
    result = model.predict("street.wav")                           # same structure as `jasc predict --json`
    result = model.predict(waveform, sample_rate=44100)            # [samples] or [samples, channels] array
    scores = model.scores("street.wav")                            # raw: scene probs, stitched frame probs

Training, recipes and plugins live in ``jasc_core`` (and the ``jasc`` command).
"""

from __future__ import annotations

from pathlib import Path

from jasc_core.inference.device_models import run_for_device
from jasc_core.inference.predict import Predictor
from jasc_core.inference.windows import FileScores

__all__ = ["FileScores", "Predictor", "load"]


def load(run_dir: str | Path, model: str = "student", *, window_seconds: float | None = None,
         hop_seconds: float | None = None, device: str = "cpu", recording_device: str | None = None) -> Predictor:
    """A run's trained model ready for ``.predict(path_or_waveform, sample_rate=None)`` and ``.scores(...)``.

    ``model``: ``student`` (the trained network) or an extra model the run kept (``teacher``). ``window_seconds``:
    the window files are cut into (default: the model's clip length); ``hop_seconds``: default half a window.
    ``recording_device``: the device that recorded the audio; its fine-tuned model (``jasc finetune-devices``) when
    the run has one, else the general model. (``device`` is where the model computes: cpu, cuda.)
    """
    return Predictor.from_run(run_for_device(run_dir, recording_device), model=model, window_seconds=window_seconds, hop_seconds=hop_seconds,
                              device=device)
