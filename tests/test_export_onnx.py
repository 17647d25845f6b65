"""``jasc export --format onnx``: the log-mel front end in the graph, onnxruntime vs PyTorch, int8, and
``jasc predict --onnx`` without torch (engine fakes with the logmel features at 8 kHz)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from predict_runs import trained_fake_run

import jasc
from jasc_core.cli import main

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

RATE = 44100
LOGMEL = {"name": "logmel", "sample_rate": 8000, "n_mels": 16, "win_ms": 50, "hop_ms": 50}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A trained fakes run with log-mel features, exported with an int8 copy (1-s windows: the fakes' clips)."""
    root = tmp_path_factory.mktemp("export")
    with trained_fake_run(root / "run", **{"data.n_eval": 16, "features": LOGMEL}) as run_dir:
        with pytest.raises(SystemExit) as exit_info:
            main(["export", str(run_dir), "--format", "onnx", "--quantize", "int8,fp16", "--calibration-clips", "4",
                  "--window", "1", "--out", str(root / "onnx")])
        assert exit_info.value.code in (0, None)
        yield run_dir, root / "onnx"


def test_export_folder_round_trip_and_int8_report(exported):
    _, folder = exported
    assert {p.name for p in folder.iterdir()} >= {"model.onnx", "model.int8.onnx", "model.fp16.onnx", "labels.json",
                                                    "frontend.json", "thresholds.json", "export.json", "README.md"}
    report = json.loads((folder / "export.json").read_text())
    assert report["round_trip"]["clips"] == 10 and report["round_trip"]["max_abs_diff"] < 1e-4
    assert report["fp32"]["metrics"]["scene/accuracy"] == 1.0
    assert abs(report["int8"]["change_points"]["event/frame_micro_f1"]) <= 2.0
    assert report["int8"]["bytes"] > 0 and report["int8"]["calibration_clips"] == 4
    assert report["int8"]["calibration_split"] == "val" and report["int8"]["reduce_range"] is True
    # The fakes' one convolution sees a single input channel (fewer than 32 values per output): kept float.
    assert report["int8"]["float_convolutions"] == 1 and report["int8"]["int8_operators"]["Gemm"] >= 1
    import onnx

    half = onnx.load(str(folder / "model.fp16.onnx"))
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in half.graph.initializer)
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in and out
    assert "change_points" in report["fp16"] or report["fp16"]["checked"] is False


def test_the_exported_front_end_is_an_fft_and_the_file_little_more_than_the_weights(exported):
    import onnx

    _, folder = exported
    model = onnx.load(str(folder / "model.onnx"))
    ops = [node.op_type for node in model.graph.node]
    front_end = [node for node in model.graph.node if node.name.startswith("/pipeline/features/")]
    # The power spectrum and mel projection are the matrix-product FFT (jasc_core.inference.onnx_fft), no Fourier
    # convolution nor STFT left.
    assert {"MatMul", "ScatterND"} <= {node.op_type for node in front_end}
    assert not {"Conv", "STFT"} & {node.op_type for node in front_end} and "BatchNormalization" not in ops
    report = json.loads((folder / "export.json").read_text())
    # 8 kHz, 50-ms window: n_fft 512, 257 bins x 16 mels of mel basis (stored sparse); the Fourier kernels would add
    # 2 x 257 x 512 values.
    mel_basis = 257 * 16 * 4
    assert report["fp32"]["bytes"] < report["parameter_bytes_fp32"] + mel_basis + 512 * 4 + 20_000
    assert json.loads((folder / "labels.json").read_text()) == {"scene": ["high", "low"], "event": ["beep", "buzz"]}
    frontend = json.loads((folder / "frontend.json").read_text())
    assert (frontend["sample_rate"], frontend["window_samples"], frontend["frames_per_window"]) == (8000, 8000, 20)


def test_onnxruntime_matches_pytorch_on_a_long_file(exported, tmp_path):
    from jasc_core.inference.onnx_predict import OnnxPredictor

    run_dir, folder = exported
    t = np.arange(round(12.3 * RATE)) / RATE
    left = 0.3 * np.sin(2 * np.pi * 300 * t)
    left[(t > 0.8) & (t < 1.3)] += 0.6 * np.sin(2 * np.pi * 1000 * t[(t > 0.8) & (t < 1.3)])
    path = tmp_path / "x.wav"
    sf.write(path, np.stack([left, left], 1).astype(np.float32), RATE, subtype="FLOAT")
    torch_scores = jasc.load(run_dir, window_seconds=1.0).scores(path)
    onnx_scores = OnnxPredictor(folder).scores(path)
    assert np.abs(torch_scores.event - onnx_scores.event).max() < 1e-4
    assert np.abs(torch_scores.scene - onnx_scores.scene).max() < 1e-4
    result = OnnxPredictor(folder).predict(path)
    assert result["scene"] == "low" and [e["event_label"] for e in result["events"]][:1] == ["beep"]
    # A file shorter than the graph's window is zero-padded to it; its frames are cut back.
    short = tmp_path / "short.wav"
    sf.write(short, left[: RATE // 2, None], RATE)
    assert OnnxPredictor(folder).scores(short).event.shape == (10, 2)


def test_predict_onnx_runs_without_importing_torch(exported, tmp_path):
    _, folder = exported
    path = tmp_path / "tone.wav"
    t = np.arange(3 * RATE) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32), RATE)
    code = (
        "import sys\n"
        "from jasc_core.cli import main\n"
        "try:\n"
        f"    main(['predict', '--onnx', {str(folder)!r}, {str(path)!r}, '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('NO_TORCH')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "NO_TORCH" in done.stdout
    (result,) = json.loads(done.stdout.split("NO_TORCH")[0])
    assert result["scene"] == "high"


def test_export_of_a_missing_folder_or_bad_option_is_one_line(exported, tmp_path, cli):
    run_dir, folder = exported
    code, _, err = cli("export", str(run_dir), "--format", "tflite")
    assert code == 2 and "only onnx" in err
    code, _, err = cli("predict", "--onnx", str(tmp_path / "nowhere"), str(tmp_path / "x.wav"))
    assert code == 2 and "not a jasc export folder" in err


def test_the_export_carries_the_runs_tuned_median_filters_and_sebb_parameters(exported, tmp_path):
    """What `jasc postprocess tune` stored in the run reaches `jasc predict --onnx` as it reaches `jasc predict RUN`:
    per-class median filters in thresholds.json, SEBB parameters as sebb.json (exports made before lost both)."""
    import math
    import shutil

    from jasc_core.inference.onnx_predict import OnnxPredictor
    from jasc_core.runs.median_filters import save_median_filters
    from jasc_core.runs.sebb_params import SebbParams, save_sebb

    run_dir, _ = exported
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    labels = list(jasc.load(run).labels["event"])
    lengths = {label: 0.2 * (i + 1) for i, label in enumerate(labels)}
    save_median_filters(run, lengths)
    wave = (0.3 * np.sin(2 * np.pi * 2500 * np.arange(3 * 8000) / 8000)).astype(np.float32)

    def export(out):
        with pytest.raises(SystemExit) as exit_info:
            main(["export", str(run), "--format", "onnx", "--window", "1", "--out", str(out)])
        assert exit_info.value.code in (0, None)
        return OnnxPredictor(out)

    onnx = export(tmp_path / "median")
    from_run = jasc.load(run)
    assert onnx.postprocess.median_filter == from_run.postprocess.median_filter == pytest.approx(lengths)
    assert onnx.sebb is None and not (tmp_path / "median" / "sebb.json").exists()
    assert onnx.predict(wave, 8000)["events"] == from_run.predict(wave, 8000)["events"]

    params = SebbParams({label: 0.4 for label in labels}, {label: 0.2 for label in labels},
                        {label: math.inf for label in labels}, {label: 0.5 for label in labels})
    save_sebb(run, {"psds": params, "cbf": params})
    onnx = export(tmp_path / "median")  # into the same folder: now with sebb.json
    assert onnx.sebb == jasc.load(run).sebb == params
    assert "SEBB" in json.loads((tmp_path / "median" / "export.json").read_text())["events"]
