"""``jasc export --format wheel``: the wheel's contents, its runtime against ``jasc predict --onnx``, device models,
and (slow) an install into a fresh venv without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import engine_fakes
import numpy as np
import pytest
import soundfile as sf
import torch

from jasc_core.inference.wheel_package import build_wheel, package_name
from jasc_core.model.pipeline import Labels, build_pipeline
from jasc_core.recipes.model import dump_yaml, identity_dict
from jasc_core.runs.checkpoints import save_atomic
from jasc_core.runs.folder import create_run

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

LOGMEL = {"name": "logmel", "sample_rate": 8000, "n_mels": 16, "win_ms": 50, "hop_ms": 50}


def _run(folder: Path, seed: int) -> Path:
    """A run folder with a randomly initialised scene + event model as its best checkpoint (no training)."""
    recipe = engine_fakes.make_recipe(**{"features": LOGMEL, "evaluate.plots": False, "data.n_eval": 4})
    labels = Labels({"scene": ["high", "low"], "event": ["beep", "buzz"]})
    torch.manual_seed(seed)
    pipeline = build_pipeline(recipe, labels, ("scene", "event"))
    run = create_run(folder, recipe_yaml=dump_yaml(recipe), identity=identity_dict(recipe), version="t")
    save_atomic({"model": pipeline.state_dict(), "labels": labels.as_dict(), "tasks": ["scene", "event"]}, run.best)
    return run.root


@pytest.fixture
def wheel(fakes, tmp_path):
    run = _run(tmp_path / "my run", 0)
    _run(run / "devices" / "a", 1)
    (run / "device_models.json").write_text(json.dumps({"devices": {"a": "devices/a"}}))
    return run, build_wheel(run, tmp_path / "dist", split="eval", window_seconds=1.0)


def _waveform(seconds: float = 2.3, rate: int = 8000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 300 * t) + 0.05 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def test_the_wheel_holds_models_labels_metadata_a_console_script_and_a_runtime_like_predict_onnx(wheel, tmp_path):
    run, path = wheel
    name = package_name(run)
    assert name == "jasc_my_run" and path.name.startswith("jasc_my_run-0.1.0+") and path.suffix == ".whl"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        labels = json.loads(archive.read(f"{name}/models/general/labels.json"))
        devices = json.loads(archive.read(f"{name}/models/devices.json"))
        record = archive.read(f"{info}/RECORD").decode()
    assert {f"{name}/models/general/model.onnx", f"{name}/models/device_a/model.onnx", f"{name}/runtime.py"} <= names
    assert labels == {"scene": ["high", "low"], "event": ["beep", "buzz"]} and devices == {"a": "device_a"}
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    assert requires == ["numpy", "onnxruntime", "soundfile", 'soxr; extra == "resample"']  # no torch, no jasc
    assert f"{name} = {name}.runtime:main" in entry_points
    assert len(record.splitlines()) == len(names)
    _check_runtime(run, path, tmp_path)


def _check_runtime(run, path, tmp_path):
    """The packaged runtime (imported from the unpacked wheel) matches jasc predict --onnx and picks device models
    (one test with the contents above: each wheel build exports two models)."""
    from jasc_core.inference.export import export_onnx
    from jasc_core.inference.onnx_predict import OnnxPredictor

    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "site")
    sys.path.insert(0, str(tmp_path / "site"))
    try:
        package = __import__(package_name(run))
        audio = _waveform()
        export_onnx(run, tmp_path / "onnx", split="eval", window_seconds=1.0)
        reference = OnnxPredictor(tmp_path / "onnx").scores(audio, 8000)
        got = package.scores(audio, 8000)
        assert np.abs(got["scene"] - reference.scene).max() < 1e-4
        assert np.abs(got["event"] - reference.event).max() < 1e-4
        assert package.predict(audio, 8000, device="a")["model"] == "device_a"
        assert package.predict(audio, 8000, device="s9")["model"] == "general"
        other = package.scores(audio, 8000, device="a")["scene"]
        assert np.abs(other - got["scene"]).max() > 1e-6  # the device's own weights
    finally:
        sys.path.remove(str(tmp_path / "site"))
        sys.modules.pop(package_name(run), None)


@pytest.mark.slow
def test_the_wheel_installs_without_torch_and_matches_jasc_predict_onnx(wheel, tmp_path):
    """A fresh venv gets the wheel, onnxruntime, numpy and soundfile (the versions installed here, via pip's cache
    or PyPI) and nothing else; its console script agrees with `jasc predict --onnx` to 1e-4."""
    import numpy
    import onnxruntime

    from jasc_core.inference.export import export_onnx

    run, path = wheel
    house = tmp_path / "wheelhouse"
    pins = [f"onnxruntime=={onnxruntime.__version__}", f"numpy=={numpy.__version__}", f"soundfile=={sf.__version__}"]
    download = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(house), *pins],
                              capture_output=True, text=True)
    if download.returncode != 0:
        pytest.skip(f"no wheels of {pins} in pip's cache or PyPI: {download.stderr.strip()[-200:]}")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(house), str(path)],
                   check=True)
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0
    audio_path = tmp_path / "x.wav"
    sf.write(audio_path, _waveform(), 8000, subtype="FLOAT")
    name = package_name(run)
    out = subprocess.run([str(venv / "bin" / name), str(audio_path)], check=True, capture_output=True, text=True)
    packaged = json.loads(out.stdout.splitlines()[0])["scene_probabilities"]
    export_onnx(run, tmp_path / "onnx", split="eval", window_seconds=1.0)
    reference = subprocess.run([sys.executable, "-m", "jasc_core.cli", "predict", "--onnx", str(tmp_path / "onnx"),
                                str(audio_path), "--json"], check=True, capture_output=True, text=True)
    expected = json.loads(reference.stdout)[0]["scene_probabilities"]
    assert max(abs(packaged[k] - expected[k]) for k in expected) < 1e-4
