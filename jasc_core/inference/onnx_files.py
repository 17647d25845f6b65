"""What an ONNX export folder holds and how it is opened: output names, the onnxruntime session, the README.

No torch here: ``jasc predict --onnx`` runs with numpy, soundfile, soxr and onnxruntime only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # onnxruntime is an optional extra
    from onnxruntime import InferenceSession

from pathlib import Path
from types import ModuleType

from jasc_core.errors import ConfigError


def require_onnx() -> ModuleType:
    """``onnxruntime`` (and ``onnx`` for export), or a ConfigError naming the extra to install."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX needs onnxruntime (and onnx to export): pip install 'jasc[export]'") from None
    return onnxruntime


def onnx_session(path: str | Path, ort: ModuleType | None = None, threads: int = 1) -> InferenceSession:
    """An onnxruntime CPU session with ``threads`` intra-op threads (1: the benchmark's and DCASE's convention)."""
    ort = ort or require_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


EXPORT_README = """# jasc ONNX export

Run: `{run}` (model: {model}). Made by `jasc export`; check figures in `export.json`.

## Files

- `model.onnx`: waveform `[batch, {samples}]` (mono float32 at {rate} Hz, {seconds:g} s) -> {outputs}
  (probabilities: scene softmax `[batch, scenes]`, event sigmoid per frame `[batch, frames, events]`).
  The log-mel front end is inside the graph (an FFT as two matrix products, the mel basis as a matmul).
- `model.int8.onnx` (with `--quantize int8`): static int8 (QDQ, calibrated on clips of the run, per-channel 7-bit
  weights); the front end, convolutions over fewer than 32 input values and the recurrent layers' arithmetic stay
  float (recurrent weights are stored in int8).
- `model.fp16.onnx` (with `--quantize fp16`): half precision for GPUs, float32 inputs, outputs and front end.
- `labels.json`: class names per task, in output order.
- `frontend.json`: sample rate, window length, frame hop, the feature settings the model was trained with.
- `thresholds.json`: per-class (or one) event thresholds and the post-processing (median filter, gap merging,
  minimum length) the run used, with its tuned per-class median filters (`jasc postprocess tune`) where it had them.
- `sebb.json` (only if the run was tuned with `jasc postprocess tune --method sebb`): its SEBB parameters; events are
  then SEBB detections (`pip install 'jasc[sebb]'`) instead of median filter and thresholds.
- `export.json`: round trip onnxruntime vs PyTorch (max abs difference {diff:.2g} on {clips} eval clips), sizes and
  eval metrics of fp32 (and of each smaller copy, with the change in points).

## Use

    jasc predict --onnx EXPORT_DIR audio.wav          # no torch needed

or by hand: read audio, mix to mono, resample to {rate} Hz, cut into windows of {samples} samples (zero-pad a
shorter file), run the session, average scene probabilities over windows, overlap-average the frame probabilities
into one track, then median filter, threshold with `thresholds.json`, merge and turn runs of active frames into
events (frame t spans [t * hop, (t + 1) * hop) seconds).
"""
