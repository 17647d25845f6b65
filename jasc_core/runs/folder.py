"""The run folder: everything one ``jasc run`` produces, in a fixed layout.

    <run>/
      run.json          marker and status: jasc version, recipe hash, created, status (running|trained|finished|
                        failed|interrupted, with the signal's name), and while training the main process's pid,
                        host and heartbeat (``jasc_core.runs.liveness``)
      recipe.yaml       the fully resolved recipe (every default filled in)
      checkpoints/      last.pt (every epoch end, for resume) and best.pt (the selected model)
      history.json      one entry per epoch: train losses per task, effective weights, lr, val metrics, time
      metrics.json      final evaluation metrics, keyed by split
      thresholds.json   tuned per-class event thresholds (``jasc thresholds tune``), used by evaluation if present
      predictions/      <split>_events.tsv (DCASE: filename onset offset event_label), <split>_scenes.tsv
      plots/            learning_curves.png, weights.png, confusion_<split>.png, event_roll_<split>.png

``open_run`` checks that a folder IS a run folder before anything reads or writes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from jasc_core.contract.json_types import JSONMapping, JSONObject, JSONValue
from jasc_core.errors import RunError
from jasc_core.runs.atomic_files import atomic_write

RUN_MARKER = "run.json"
#: ``update_meta`` reads, changes and rewrites run.json; the heartbeat thread and the loop both call it.
_META_LOCK = threading.RLock()
#: Recipe blocks that decide what training does: the recipe hash covers them and a resume must find them unchanged
#: (evaluate, output and log may differ). A run records the blocks it was hashed with (run.json ``hashed_blocks``),
#: so a block added here later leaves older runs resumable.
TRAINING_BLOCKS = ("seed", "data", "features", "model", "weighting", "schedule", "augment", "train")
#: The blocks of runs created before ``hashed_blocks`` was recorded.
LEGACY_TRAINING_BLOCKS = ("seed", "data", "features", "model", "weighting", "schedule", "train")


@dataclass(frozen=True)
class RunFolder:
    """Paths inside one run folder."""

    root: Path

    @property
    def marker(self) -> Path:
        return self.root / RUN_MARKER

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def thresholds(self) -> Path:
        return self.root / "thresholds.json"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def hashed_blocks(self) -> tuple[str, ...]:
        """The recipe blocks this run's hash covers."""
        return tuple(self.read_meta().get("hashed_blocks", LEGACY_TRAINING_BLOCKS))

    def recipe_hash(self, identity: JSONMapping) -> str:
        """The hash of a recipe's ``identity`` over this run's blocks (equal to run.json's when training is the same)."""
        return recipe_hash(identity, self.hashed_blocks())

    def read_meta(self) -> JSONObject:
        return read_json(self.marker)

    def update_meta(self, **fields: object) -> None:
        with _META_LOCK:  # one read-modify-write at a time in this process (the heartbeat thread writes too)
            meta = self.read_meta() if self.marker.exists() else {}
            meta.update(fields)
            write_json(self.marker, meta)

    def mark_failed(self, reason: str) -> None:
        """``status: failed`` with the reason, even on a full disk, where the atomic write has no room for its
        temporary file: then run.json is rewritten in place (it only grows by the reason, inside blocks it holds)."""
        try:
            self.update_meta(status="failed", error=reason)
        except OSError:
            try:
                meta = self.read_meta() | {"status": "failed", "error": reason}
                with open(self.marker, "r+", encoding="utf-8") as handle:
                    handle.write(json.dumps(meta, indent=2) + "\n")
                    handle.truncate()
            except (OSError, ValueError):
                pass  # nothing more can be written here; the exit message still names the reason


#: Fields of those blocks that decide how often state is saved, not what is trained: a resume may change them.
NOT_TRAINING = {"train": ("checkpoint_every",)}


def recipe_hash(identity: JSONMapping, blocks: tuple[str, ...] = TRAINING_BLOCKS) -> str:
    """SHA-256 of the training blocks of a recipe's identity (``identity_dict``; canonical JSON), without the
    fields of ``NOT_TRAINING``."""
    relevant = {key: identity.get(key) for key in blocks}
    for block, names in NOT_TRAINING.items():
        if isinstance(relevant.get(block), dict):
            relevant[block] = {k: v for k, v in relevant[block].items() if k not in names}
    text = json.dumps(relevant, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def new_run_dir(parent: str | Path, name: str) -> Path:
    """A fresh run folder ``parent/name`` (``name-2``, ``name-3``, ... if taken)."""
    parent = Path(parent)
    candidate = parent / name
    counter = 2
    while candidate.exists():
        candidate = parent / f"{name}-{counter}"
        counter += 1
    candidate.mkdir(parents=True)
    return candidate


def default_run_name(recipe_path: str | Path | None) -> str:
    stem = Path(recipe_path).stem if recipe_path else "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def create_run(root: Path, *, recipe_yaml: str, identity: JSONMapping, version: str) -> RunFolder:
    """Lay out a new run folder in ``root`` (which exists and is empty or new); ``identity`` is what the recipe hash
    covers (``jasc_core.recipes.model.identity_dict``)."""
    run = RunFolder(Path(root))
    for folder in (run.checkpoints, run.predictions, run.plots):
        folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run.recipe, recipe_yaml)
    write_json(
        run.marker,
        {
            "jasc_version": version,
            "recipe_hash": recipe_hash(identity),
            "hashed_blocks": list(TRAINING_BLOCKS),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": "running",
        },
    )
    return run


def open_run(path: str | Path) -> RunFolder:
    """An existing run folder, checked: it must hold ``run.json`` and ``recipe.yaml`` (RunError otherwise)."""
    root = Path(path)
    if not root.is_dir():
        raise RunError(f"{root} is not a run folder: it does not exist or is not a directory")
    run = RunFolder(root)
    missing = [p.name for p in (run.marker, run.recipe) if not p.is_file()]
    if missing:
        raise RunError(f"{root} is not a jasc run folder: {', '.join(missing)} missing (made by `jasc run`)")
    try:
        meta = run.read_meta()
    except (OSError, ValueError) as exc:
        raise RunError(f"{run.marker} is unreadable: {exc}") from None
    if "recipe_hash" not in meta:
        raise RunError(f"{run.marker} is not a jasc run marker (no recipe_hash)")
    return run


def find_runs(parent: str | Path, depth: int = 3) -> list[RunFolder]:
    """Run folders at most ``depth`` levels below ``parent`` (``parent`` itself included), sorted by path; a
    sweep's runs lie two levels down (``<sweep>/runs/<label>``)."""
    parent = Path(parent)
    found = []
    for level in range(depth + 1):
        pattern = "/".join(["*"] * level + [RUN_MARKER])
        found += [RunFolder(marker.parent) for marker in parent.glob(pattern) if marker.is_file()]
    return sorted(found, key=lambda run: str(run.root))


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text`` atomically, with the user's umask (see ``atomic_files``)."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_json(path: Path, data: object) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def read_json(path: Path) -> JSONValue:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def update_json_entry(path: Path, key: str, value: object) -> None:
    """Set ``key`` of the JSON object in ``path`` (created if missing), other entries kept.

    Under an exclusive lock on ``<path>.lock``: two evaluations of one run at once (a student and its teacher, or two
    splits) each read, change and rewrite the file, and without the lock one would lose the other's entry.
    """
    with open(path.with_name(path.name + ".lock"), "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = read_json(path) if path.is_file() else {}
            data[key] = value
            write_json(path, data)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _json_default(value: object) -> JSONValue:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(value)
