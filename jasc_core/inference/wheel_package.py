"""``jasc export RUN --format wheel``: an installable inference package of a run (DCASE 2025 Task 1 asks for one).

The wheel holds the run's ONNX model (``jasc_core.inference.export.export_onnx``, round trip checked) and, when the
run has device-specific models (``jasc finetune-devices``), one per device; labels, front end and thresholds; and a
small runtime (``wheel_template/runtime.py``) that needs onnxruntime, numpy and soundfile only (soxr for audio at
another rate than the model's, an extra). It exposes ``predict(path_or_array, sample_rate=None, device=None)`` and a
console script of the package's name.

Names: distribution and import package ``jasc_<run folder name>`` normalised (lower case, ``_`` for anything not a
letter or digit; ``--name`` overrides), version ``--version`` or ``0.1.0+<first 8 of the recipe hash>``. The wheel is
written directly (a zip with ``*.dist-info``: METADATA, WHEEL, entry_points.txt, RECORD with sha256 digests), so
exporting needs no build backend.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
import zipfile
from pathlib import Path

from jasc_core import __version__
from jasc_core.contract.json_types import JSONObject
from jasc_core.errors import ConfigError
from jasc_core.inference.device_models import device_models
from jasc_core.inference.export import export_onnx
from jasc_core.runs.folder import open_run

RUNTIME = Path(__file__).parent / "wheel_template" / "runtime.py"
#: What the package needs at run time (soxr only for audio at another rate: the ``resample`` extra).
REQUIRES = ("numpy", "onnxruntime", "soundfile")
#: Export files each model folder of the package keeps.
MODEL_FILES = ("model.onnx", "labels.json", "frontend.json", "thresholds.json", "export.json")


def package_name(run_dir: str | Path, name: str | None = None) -> str:
    """The import (and distribution) name: ``name`` or ``jasc_<run folder>``, a valid Python identifier."""
    raw = name or f"jasc_{open_run(run_dir).root.name}"
    clean = re.sub(r"[^0-9a-zA-Z]+", "_", raw).strip("_").lower()
    if not clean or clean[0].isdigit():
        raise ConfigError(f"--name {raw!r}: a package name must start with a letter")
    return clean


def package_version(run_dir: str | Path, version: str | None = None) -> str:
    if version is not None:
        if not re.fullmatch(r"\d+(\.\d+)*([a-z]+\d*)?(\+[0-9a-z.]+)?", version):
            raise ConfigError(f"--version {version!r}: not a PEP 440 version such as 1.0.0")
        return version
    return f"0.1.0+{open_run(run_dir).read_meta().get('recipe_hash', 'unknown')[:8]}"


def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def build_wheel(run_dir: str | Path, out_dir: str | Path, *, name: str | None = None, version: str | None = None,
                split: str = "eval", window_seconds: float | None = None) -> Path:
    """Export the run's model(s) to ONNX and write ``<name>-<version>-py3-none-any.whl`` into ``out_dir``."""
    package, version = package_name(run_dir, name), package_version(run_dir, version)
    models = {"general": Path(run_dir), **{f"device_{d}": path for d, path in device_models(run_dir).items()}}
    files: dict[str, bytes] = {f"{package}/__init__.py": _init_text(package).encode(),
                               f"{package}/runtime.py": RUNTIME.read_bytes(),
                               f"{package}/__main__.py": f"from {package}.runtime import main\n\nraise SystemExit(main())\n".encode()}
    devices = {key.removeprefix("device_"): key for key in models if key != "general"}
    files[f"{package}/models/devices.json"] = (json.dumps(devices, indent=2) + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        for key, run in models.items():
            folder = Path(tmp) / key
            export_onnx(run, folder, split=split, window_seconds=window_seconds)
            for file in MODEL_FILES:
                files[f"{package}/models/{key}/{file}"] = (folder / file).read_bytes()
    info = f"{package}-{version}.dist-info"
    files[f"{info}/METADATA"] = _metadata(package, version, run_dir).encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: jasc {__version__}\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n").encode()
    files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{package} = {package}.runtime:main\n".encode()
    record = [_record_line(arcname, data) for arcname, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{package}-{version}-py3-none-any.whl"
    partial = path.with_suffix(".whl.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as wheel:
        for arcname, data in files.items():
            wheel.writestr(arcname, data)
    partial.replace(path)  # complete or absent: never a half-written wheel under the final name
    return path


def _init_text(package: str) -> str:
    return (f'"""{package}: inference package of a jasc run (made by `jasc export --format wheel`)."""\n\n'
            "from .runtime import devices, labels, predict, scores\n\n"
            '__all__ = ["devices", "labels", "predict", "scores"]\n')


def _metadata(package: str, version: str, run_dir: str | Path) -> str:
    meta: JSONObject = open_run(run_dir).read_meta()
    lines = ["Metadata-Version: 2.1", f"Name: {package}", f"Version: {version}",
             f"Summary: scene classification with the jasc run {open_run(run_dir).root.name} "
             f"(recipe hash {meta.get('recipe_hash', '?')})", "Requires-Python: >=3.10",
             *(f"Requires-Dist: {req}" for req in REQUIRES), "Provides-Extra: resample",
             "Requires-Dist: soxr; extra == \"resample\""]
    return "\n".join(lines) + "\n"
