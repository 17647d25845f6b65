"""Checkpoints: what a run saves (``Checkpoint``), written and read here only, atomically.

A run folder holds two: ``last.pt`` (everything a resume needs: ``Checkpoint.training`` is set) and ``best.pt`` (the
selected model, its labels and validation metrics; ``training`` is None). On disk a checkpoint is one flat dict of
plain containers, numbers, strings and tensors, so it loads with ``torch.load(weights_only=True)``; its layout is
``CHECKPOINT_FORMAT``. A file of another format still serves its model (evaluation, prediction, ``model.init``), but
a resume refuses it.

Writes go through ``jasc_core.runs.atomic_files.atomic_write``: a temporary file in the destination folder,
fsync'ed, then moved over the destination with ``os.replace``. A process killed at any moment leaves either the
previous file or the new one, never a truncated one.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import torch

from jasc_core.contract.json_types import JSONObject
from jasc_core.errors import RunError
from jasc_core.runs.atomic_files import atomic_write

#: The layout of the dict on disk; raise it when a field changes meaning (a resume refuses other formats).
#: 3: ``partial`` (a mid-epoch checkpoint's progress through the epoch after ``epoch``) may be set.
CHECKPOINT_FORMAT = 3
#: Formats a resume reads: 2 is 3 without ``partial`` (every checkpoint then was taken at an epoch end).
RESUMABLE_FORMATS = (2, 3)


@dataclass
class TrainingState:
    """What ``last.pt`` adds to the model: the state of every part of the loop, for an exact resume."""

    phase: int
    optimizer: dict[str, object]
    lr_scheduler: dict[str, object]
    weighting: dict[str, object]
    schedule: dict[str, object]
    #: Each training stream's reader state (permutation generator and clips consumed).
    streams: dict[str, object]
    #: ``jasc_core.runs.rng.rng_state()`` and the augmentations' generator state.
    rng: dict[str, object]
    augment_rng: torch.Tensor
    history: list[JSONObject]
    bad_epochs: int
    stopped: bool
    #: The resolved recipe the run trained with (``jasc run --resume`` reads it when recipe.yaml was edited).
    recipe: JSONObject
    #: A mid-epoch checkpoint's progress through epoch ``epoch + 1``: steps done and each process's loss sums,
    #: counts and clips (``jasc_core.training.mid_epoch``); None at an epoch end.
    partial: dict[str, object] | None = None


@dataclass
class Checkpoint:
    """One checkpoint: the model (student and a schedule's extra models) and where training stood."""

    #: 0-based index of the last complete epoch.
    epoch: int
    step: int
    #: ``Pipeline.state_dict()``: feature extractor (normalisation), encoder and heads.
    model: dict[str, torch.Tensor]
    extra_models: dict[str, dict[str, torch.Tensor]]
    recipe_hash: str
    #: Class labels by task (``Labels.as_dict()``) and the tasks the model has.
    labels: dict[str, list[str]]
    tasks: list[str]
    #: Model selection: ``{"metric", "value", "epoch"}``.
    best: JSONObject
    #: best.pt: the validation metrics of the selected epoch.
    val: dict[str, float] | None = None
    #: last.pt: everything else a resume needs.
    training: TrainingState | None = None
    format: int = CHECKPOINT_FORMAT
    #: Where it was read from (not saved).
    path: Path | None = field(default=None, compare=False)

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint to ``path`` atomically, with the user's umask (see ``atomic_files``)."""
        return save_atomic(self.to_dict(), path)

    def to_dict(self) -> dict[str, object]:
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("training", "path", "val")}
        if self.val is not None:
            flat["val"] = self.val
        if self.training is not None:
            flat.update(asdict(self.training))
        return flat

    def model_only(self, val: dict[str, float]) -> Checkpoint:
        """The ``best.pt`` form: the model and what describes it, with the epoch's validation metrics."""
        return Checkpoint(self.epoch, self.step, self.model, self.extra_models, self.recipe_hash, self.labels,
                          self.tasks, self.best, val=dict(val))

    def check_resumable(self, recipe_hash: str) -> TrainingState:
        """The training state, after checking this checkpoint was written for ``recipe_hash`` in this format."""
        if self.recipe_hash != recipe_hash:
            raise RunError(f"{self.path} was written for a different recipe; start a new run")
        if self.format not in RESUMABLE_FORMATS or self.training is None:
            raise RunError(f"{self.path} is a checkpoint of format {self.format}; this jasc resumes formats "
                           f"{', '.join(map(str, RESUMABLE_FORMATS))} only: start a new run")
        return self.training

    @classmethod
    def from_dict(cls, flat: dict[str, object], path: Path | None = None) -> Checkpoint:
        if not isinstance(flat, dict) or not isinstance(flat.get("model"), dict):
            raise RunError(f"{path} holds no model state: not a jasc checkpoint")
        training = None
        if all(f.name in flat for f in fields(TrainingState) if f.default is MISSING):  # optional: newer fields
            training = TrainingState(**{f.name: flat[f.name] for f in fields(TrainingState) if f.name in flat})
        return cls(epoch=int(flat.get("epoch", -1)), step=int(flat.get("step", 0)), model=flat["model"],
                   extra_models=dict(flat.get("extra_models", {})), recipe_hash=str(flat.get("recipe_hash", "")),
                   labels=dict(flat.get("labels", {})), tasks=list(flat.get("tasks", [])),
                   best=dict(flat.get("best", {})), val=flat.get("val"), training=training,
                   format=int(flat.get("format", 0)), path=path)


def save_atomic(state: dict[str, object], path: str | Path) -> Path:
    """Write ``state`` with ``torch.save`` to ``path`` atomically, with the user's umask (see ``atomic_files``)."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        try:
            torch.save(state, handle)
        except RuntimeError as exc:
            # torch's zip writer reports a failed write (a full disk) as a RuntimeError raised while handling the
            # OSError; give the caller the OSError, naming the file.
            if isinstance(exc.__context__, OSError):
                raise OSError(exc.__context__.errno, exc.__context__.strerror, str(path)) from exc
            raise
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint onto the CPU (a RunError names the file when it is missing or unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint {path} does not exist")
    try:
        flat = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunError(f"checkpoint {path} cannot be loaded: {type(exc).__name__}: {exc}") from None
    return Checkpoint.from_dict(flat, path)
