"""Pretrained weights: the published checkpoints by name, the weights home, downloads and loading.

``jasc weights download NAME`` fetches a checkpoint from its published location with pooch into the weights home
(``$JASC_WEIGHTS``, else ``jasc-weights`` beside the data home: ``$XDG_DATA_HOME/jasc-weights``,
``~/.local/share/jasc-weights``; ``~/Library/Application Support/jasc-weights`` on macOS,
``%LOCALAPPDATA%\\jasc-weights`` on Windows). Neither Microsoft nor EfficientAT publishes checksums, so the SHA-256 of
the first download is recorded next to the file (``NAME.json``, written last: a file without it counts as absent)
and every later load checks the file against it; an entry with a published ``sha256`` is checked against that too.

A recipe names weights in its encoder block, ``model.encoder.weights: NAME | path``; the encoder loads them with
``strict=True`` when it is built. ``read_state`` takes the tensors out of either layout: BEATs checkpoints are
``{"cfg": ..., "model": state_dict}``, EfficientAT's are the state dict itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jasc_core import ConfigError, DataError

WEIGHTS_ENV = "JASC_WEIGHTS"
#: The Azure blob behind the BEATs README's links (microsoft/unilm beats/README.md, March 2023; readable to 2033).
_BEATS_BLOB = "https://valle.blob.core.windows.net/share/BEATs/{}.pt"
_BEATS_SAS = ("?sv=2020-08-04&st=2023-03-01T07%3A51%3A05Z&se=2033-03-02T07%3A51%3A00Z&sr=c&sp=rl"
              "&sig=QJXmSJG9DbMKf48UDIU1MfzIro8HQOf3sqlNXiflY1I%3D")
#: EfficientAT's GitHub release (models/mn/model.py ``model_url``).
_EFFICIENTAT_RELEASE = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/{}"


@dataclass(frozen=True)
class Checkpoint:
    """One published checkpoint: which encoder and encoder settings it needs, and where it is."""

    name: str
    encoder: str
    filename: str
    url: str
    description: str
    #: Encoder block values the checkpoint's tensors need (checked against the recipe).
    config: Mapping[str, Any] = field(default_factory=dict)
    #: Published SHA-256, where the authors give one (none do yet): checked on every download and load.
    sha256: str | None = None


def _beats(name: str, stem: str, description: str, **config: Any) -> Checkpoint:
    return Checkpoint(name, "beats", f"{stem}.pt", _BEATS_BLOB.format(stem) + _BEATS_SAS, description, config)


def _mn(name: str, filename: str, width: float, map_: str) -> Checkpoint:
    return Checkpoint(name, "efficientat", filename, _EFFICIENTAT_RELEASE.format(filename),
                      f"EfficientAT MobileNetV3 width {width}, AudioSet mAP {map_}", {"width_mult": width})


CHECKPOINTS: dict[str, Checkpoint] = {c.name: c for c in (
    _beats("beats_iter3", "BEATs_iter3", "BEATs iter3, self-supervised on AudioSet-2M"),
    _beats("beats_iter3_plus_as20k", "BEATs_iter3_plus_AS20K", "BEATs iter3+, self-supervised, tokenizer on AS-20K"),
    _beats("beats_iter3_plus_as2m", "BEATs_iter3_plus_AS2M", "BEATs iter3+, self-supervised on AudioSet-2M "
           "(the DCASE 2024 Task 4 baseline's)"),
    _beats("beats_iter3_plus_as2m_cpt1", "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt1",
           "BEATs iter3+ AS2M fine-tuned on AudioSet-2M (cpt1), with the 527-class predictor", predictor_classes=527),
    _beats("beats_iter3_plus_as2m_cpt2", "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2",
           "BEATs iter3+ AS2M fine-tuned on AudioSet-2M (cpt2), with the 527-class predictor", predictor_classes=527),
    _mn("mn01_as", "mn01_as_mAP_298.pt", 0.1, ".298"),
    _mn("mn02_as", "mn02_as_mAP_378.pt", 0.2, ".378"),
    _mn("mn04_as", "mn04_as_mAP_432.pt", 0.4, ".432"),
    _mn("mn05_as", "mn05_as_mAP_443.pt", 0.5, ".443"),
    _mn("mn10_as", "mn10_as_mAP_471.pt", 1.0, ".471"),
    _mn("mn20_as", "mn20_as_mAP_478.pt", 2.0, ".478"),
    _mn("mn30_as", "mn30_as_mAP_482.pt", 3.0, ".482"),
    _mn("mn40_as", "mn40_as_mAP_484.pt", 4.0, ".484"),
    _mn("mn40_as_ext", "mn40_as_ext_mAP_487.pt", 4.0, ".487"),
)}


def weights_home() -> Path:
    """``$JASC_WEIGHTS``, else ``jasc-weights`` in the user data folder (beside the data home's ``jasc``)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif os.uname().sysname == "Darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "jasc-weights"


def checkpoint(name: str) -> Checkpoint:
    if name not in CHECKPOINTS:
        raise ConfigError(f"no pretrained weights named '{name}'; known: {', '.join(CHECKPOINTS)}")
    return CHECKPOINTS[name]


def record_path(entry: Checkpoint, home: Path | None = None) -> Path:
    return (home or weights_home()) / f"{entry.name}.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_downloaded(entry: Checkpoint, home: Path | None = None) -> bool:
    home = home or weights_home()
    return record_path(entry, home).is_file() and (home / entry.filename).is_file()


def download(name: str, *, url: str | None = None, home: Path | None = None, progress: bool = False) -> Path:
    """Fetch ``name`` into the weights home (from ``url``, a mirror, if given) unless it is there; returns its path.

    pooch writes to a temporary name and moves the file into place only when complete (and, with a published
    hash, verified). The SHA-256 is then recorded (or checked against an earlier record) and the record is written
    last, atomically.
    """
    import pooch
    import requests

    entry = checkpoint(name)
    home = home or weights_home()
    home.mkdir(parents=True, exist_ok=True)
    if is_downloaded(entry, home):
        verify(entry, home)
        return home / entry.filename
    source = url or entry.url
    known = f"sha256:{entry.sha256}" if entry.sha256 else None
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=60)
    try:
        path = Path(pooch.retrieve(source, known_hash=known, fname=entry.filename, path=home, downloader=downloader))
    except ValueError as exc:  # pooch's hash mismatch: the download is deleted
        raise DataError(f"weights {name}: {exc}") from None
    except requests.exceptions.RequestException as exc:
        raise DataError(f"weights {name}: download from {source} failed: {exc.__class__.__name__}: {exc}") from None
    digest = sha256_of(path)
    record = {"name": name, "filename": entry.filename, "url": source, "sha256": digest,
              "sha256_published": entry.sha256 is not None, "bytes": path.stat().st_size}
    partial = record_path(entry, home).with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, record_path(entry, home))
    return path


def verify(entry: Checkpoint, home: Path | None = None) -> Path:
    """The checkpoint's path after checking its SHA-256 against the record of its first download (and the
    published one); a missing file or a mismatch is a ``DataError`` saying what to do."""
    home = home or weights_home()
    path = home / entry.filename
    if not is_downloaded(entry, home):
        raise DataError(f"weights {entry.name} are not in {home}: run `jasc weights download {entry.name}` "
                        f"(weights home: ${WEIGHTS_ENV}, else {weights_home()})")
    recorded = json.loads(record_path(entry, home).read_text(encoding="utf-8"))["sha256"]
    digest = sha256_of(path)
    for expected, what in ((recorded, "recorded at its first download"), (entry.sha256, "published")):
        if expected is not None and digest != expected:
            raise DataError(f"{path}: SHA-256 {digest} differs from the one {what} ({expected}); delete it and "
                            f"its record {record_path(entry, home).name} and download again")
    return path


def read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """(state dict, BEATs ``cfg`` or None) of a checkpoint file in either published layout."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come as several types
        raise DataError(f"{path}: not a readable torch checkpoint ({exc.__class__.__name__}: {exc})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        return loaded["model"], loaded.get("cfg")
    if isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        return loaded, None
    raise DataError(f"{path}: neither a state dict nor a {{'cfg', 'model'}} checkpoint")


def resolve(spec: str, encoder: str, block: Mapping[str, Any]) -> Path:
    """The file ``model.encoder.weights`` names: a catalogue name (checked against the encoder and its block,
    verified on disk) or a path."""
    if spec in CHECKPOINTS:
        entry = CHECKPOINTS[spec]
        if entry.encoder != encoder:
            raise ConfigError(f"model.encoder.weights: {spec} are weights of encoder '{entry.encoder}', not '{encoder}'")
        for key, value in entry.config.items():
            if block.get(key) != value:
                raise ConfigError(f"model.encoder.{key}: weights {spec} need {key}: {value}, the recipe has "
                                  f"{block.get(key)}")
        return verify(entry)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(f"model.encoder.weights: '{spec}' is neither a name of `jasc weights list` nor a file")
    return path


def load_into(module: torch.nn.Module, spec: str, encoder: str, block: Mapping[str, Any]) -> dict[str, Any] | None:
    """Load the weights ``spec`` names into ``module`` with ``strict=True``; returns the BEATs ``cfg`` if any."""
    path = resolve(spec, encoder, block)
    state, cfg = read_state(path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:3]
        raise ConfigError(f"model.encoder.weights: {path} does not fit encoder '{encoder}' with this block: "
                          + " ".join(line.strip() for line in first)) from None
    return cfg


def random_init_phrase(encoder: str) -> str:
    """What a run says when its pretrained encoder starts from random weights (``allow_random_init: true``)."""
    return f"encoder '{encoder}' from random weights (allow_random_init), not the pretrained checkpoint"
