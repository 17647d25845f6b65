"""Knowledge distillation from an ensemble of finished runs (the recipe's ``distill`` block; docs/distillation.md).

Per batch, before augmentation, ``attach`` puts the teachers' outputs into the batch as targets of their own output
names, ``scene/teacher`` (class probabilities at temperature T, ``[B, N]``) and ``event/teacher`` (frame
probabilities, ``[B, T, M]``), every clip marked as carrying them. They travel with the batch through the recipe's
augmentations exactly like the labels: mixup mixes them with the same weight and partner as the labels; masking and
Freq-MixStyle leave them as they are (the teacher saw the clean clip, as CP-JKU's distillation does). After the
student's forward pass ``losses`` gives the named extra losses the step adds to the weighted task loss (so it works
with every schedule and weighting):

- ``distill/scene``: weight * T^2 * KL(p_teacher,T || softmax(z_student / T)) (Hinton et al. 2015: the T^2 keeps the
  gradient scale of the soft term independent of T);
- ``distill/event``: weight * BCE(sigmoid(z_student), p_teacher) over frames.

The ensemble: the teachers' scene logits are averaged (CP-JKU averages logits), their event probabilities are
averaged. ``cached`` mode computes the teachers' outputs of a clip once and keeps them in memory, saved to
``<cache_dir>/<key>.pt`` after each epoch (a resumed run, or another student of the same teachers, reloads them).
The key of the file covers each teacher's run folder and checkpoint (path, size, modification time); the key of an
entry is the clip id and a digest of the clip's waveform, so a changed teacher or changed audio is never served from
the cache.

Under DDP each process computes the outputs of the clips its share of each global batch holds, so in the first epoch
every clip is computed once, by one process. The share of a clip moves between processes from epoch to epoch (each
pass is shuffled globally), so at each epoch end the processes exchange the entries they computed since the last
exchange (``Runtime.all_gather``): from the second epoch on every process finds every clip, and the job computes each
clip once, not once per process. The main process writes the one file. The terms are shared as the task losses are
(``Runtime.share_losses``): their value is the mean over the clips of the global batch and their gradient, after
the processes' gradients are averaged, that mean's, also when the processes hold different numbers of clips.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from jasc_core.contract.batch import Batch
from jasc_core.contract.tasks import TASK_DESCRIPTIONS
from jasc_core.errors import ConfigError
from jasc_core.inference.scoring import load_trained
from jasc_core.model.pipeline import Labels, Pipeline
from jasc_core.runs.checkpoints import save_atomic
from jasc_core.runs.folder import open_run
from jasc_core.training.runtime import Runtime

log = logging.getLogger("jasc")

#: The output-name suffix of teachers' targets in the batch (``scene/teacher``, ``event/teacher``).
TEACHER = "teacher"
#: Teachers' output per task: scene logits are averaged, event frame probabilities are averaged.
_SCENE, _EVENT = "scene", "event"


def default_cache_dir() -> Path:
    return Path(os.environ.get("JASC_CACHE") or Path.home() / ".cache" / "jasc") / "teachers"


def checked_teachers(
    runs: Sequence[str], labels: Labels, tasks: Sequence[str], sample_rate: int, device: torch.device,
) -> list[Pipeline]:
    """The teachers' pipelines (best checkpoints, eval mode, on ``device``); a teacher without one of the student's
    tasks, with other labels for one, or with another sample rate is a ConfigError naming the run."""
    pipelines = []
    for i, run in enumerate(runs):
        where = f"distill.teachers[{i}] ({run})"
        try:
            _, pipeline, teacher_labels = load_trained(run, device=str(device))
        except Exception as exc:  # a missing folder or checkpoint: say which teacher
            raise ConfigError(f"{where}: {exc}") from None
        for task in tasks:
            if task not in pipeline.tasks:
                raise ConfigError(f"{where}: the teacher has no {task} head (its tasks: {', '.join(pipeline.tasks)}); "
                                  f"the student trains {', '.join(tasks)}")
            if list(teacher_labels[task]) != list(labels[task]):
                raise ConfigError(f"{where}: its {task} labels {list(teacher_labels[task])} differ from the "
                                  f"student's {list(labels[task])}")
        if int(pipeline.features.sample_rate) != int(sample_rate):
            raise ConfigError(f"{where}: the teacher reads audio at {pipeline.features.sample_rate} Hz, the student at "
                              f"{sample_rate} Hz; distillation feeds both the same waveforms")
        for param in pipeline.parameters():
            param.requires_grad_(False)
        pipelines.append(pipeline.eval())
    return pipelines


def teacher_key(runs: Sequence[str]) -> str:
    """A digest of the teachers: run folder and the checkpoint file's path, size and modification time."""
    parts = []
    for run in runs:
        folder = open_run(run)
        path = folder.best if folder.best.is_file() else folder.last
        stat = path.stat()
        parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def wants_online(config: Any, augmentations: Sequence[Any]) -> bool:
    """Whether teachers' outputs are computed every step: ``online``, or ``auto`` with an augmentation that changes
    the clip's audio (``Augmentation.changes_clip_audio``)."""
    if config.outputs != "auto":
        return config.outputs == "online"
    return any(getattr(a, "changes_clip_audio", False) for a in augmentations)


class Distiller:
    """Teachers' outputs as batch targets (``attach``) and the distillation terms (``losses``)."""

    def __init__(self, config: Any, labels: Labels, tasks: Sequence[str], sample_rate: int, runtime: Runtime,
                 augmentations: Sequence[Any] = ()) -> None:
        self.config = config
        self.tasks = tuple(t for t in tasks if config.tasks is None or t in config.tasks)
        unknown = sorted(set(config.tasks or ()) - set(tasks))
        if unknown:
            raise ConfigError(f"distill.tasks: {', '.join(unknown)} is not a task of the student "
                              f"({', '.join(tasks)})")
        self.teachers = checked_teachers(config.teachers, labels, self.tasks, sample_rate, runtime.device)
        self.online = wants_online(config, augmentations)
        self.runtime = runtime  # its device, its rank, and the cache exchange between processes (all_gather)
        self.cache: dict[str, dict[str, Tensor]] = {}
        self.path = (Path(config.cache_dir) if config.cache_dir else default_cache_dir()) / (
            f"{teacher_key(config.teachers)}.pt")
        self._saved = 0
        if not self.online and self.path.is_file():
            self.cache = _read_cache(self.path)
            self._saved = len(self.cache)
        self._fresh: list[str] = []  # keys this process computed since the last exchange
        self.computed = 0  # clips whose teachers' outputs this process computed (not read from the cache)

    @torch.no_grad()
    def _teach(self, waveform: Tensor) -> dict[str, Tensor]:
        """The ensemble's outputs on ``waveform``: mean scene logits, mean event frame probabilities."""
        sums: dict[str, Tensor] = {}
        for teacher in self.teachers:
            outputs = teacher(waveform)
            for task in self.tasks:
                value = outputs[task].float()
                value = TASK_DESCRIPTIONS[task].probabilities(value) if TASK_DESCRIPTIONS[task].frame_level else value
                sums[task] = sums[task] + value if task in sums else value
        return {task: total / len(self.teachers) for task, total in sums.items()}

    def _outputs(self, batch: Batch) -> dict[str, Tensor]:
        if self.online:
            self.computed += len(batch)
            return self._teach(batch.waveform)
        keys = [f"{clip_id}:{_digest(w)}" for clip_id, w in zip(batch.clip_ids, batch.waveform, strict=True)]
        missing = [i for i, key in enumerate(keys) if key not in self.cache]
        if missing:
            fresh = self._teach(batch.waveform[missing])
            for row, i in enumerate(missing):
                self.cache[keys[i]] = {task: value[row].cpu() for task, value in fresh.items()}
                self._fresh.append(keys[i])
            self.computed += len(missing)
        device = batch.waveform.device
        return {task: torch.stack([self.cache[key][task] for key in keys]).to(device) for task in self.tasks}

    def attach(self, batch: Batch) -> Batch:
        """``batch`` with the teachers' targets (``<task>/teacher``) and all-True masks for them."""
        outputs = self._outputs(batch)
        targets, masks = dict(batch.targets), dict(batch.masks)
        ones = torch.ones(len(batch), dtype=torch.bool, device=batch.waveform.device)
        for task, value in outputs.items():
            if not TASK_DESCRIPTIONS[task].frame_level:
                value = torch.softmax(value / self.config.temperature, dim=-1)
            targets[f"{task}/{TEACHER}"], masks[f"{task}/{TEACHER}"] = value, ones
        return batch.replace(targets=targets, masks=masks)

    def losses(self, outputs: Mapping[str, Tensor], batch: Batch, runtime: Runtime | None = None) -> dict[str, Tensor]:
        """The named distillation terms of one batch (see the module docstring); with ``runtime``, each the mean
        over every process's clips (``Runtime.share_losses``: a collective, so every process calls it)."""
        terms: dict[str, tuple[Tensor, int]] = {}
        temperature = self.config.temperature
        for task in self.tasks:
            key = f"{task}/{TEACHER}"
            if key not in batch.targets or task not in outputs:
                continue
            mask = batch.masks[key]
            if not bool(mask.any()):
                continue
            description = TASK_DESCRIPTIONS[task]
            student, target = description.align(outputs[task][mask].float(), batch.targets[key][mask].float())
            if description.frame_level:
                term = F.binary_cross_entropy_with_logits(student, target)
            else:
                term = F.kl_div(F.log_softmax(student / temperature, dim=-1), target,
                                reduction="batchmean") * temperature**2
            terms[f"distill/{task}"] = (term, int(mask.sum()))
        names = [f"distill/{task}" for task in self.tasks]
        shared = (runtime.share_losses(terms, names) if runtime is not None
                  else {name: term for name, (term, _) in terms.items()})
        return {name: self.config.weight * term for name, term in shared.items()}

    def save(self) -> None:
        """At an epoch end, on every process: take the entries the other processes computed since the last call
        (a collective under DDP), then the main process writes the cache when it grew (atomically)."""
        if self.online:
            return
        fresh = _pack({key: self.cache[key] for key in self._fresh}, self.tasks)
        self._fresh = []
        for rank, part in enumerate(self.runtime.all_gather(fresh)):
            if rank != self.runtime.rank:
                self.cache.update(_unpack(part))
        if not self.runtime.is_main or len(self.cache) == self._saved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_atomic(self.cache, self.path)
        self._saved = len(self.cache)


def _pack(entries: Mapping[str, Mapping[str, Tensor]], tasks: Sequence[str]) -> tuple[list[str], dict[str, Tensor]]:
    """Entries as keys and one stacked tensor per task: what the processes exchange (pickled by the collective,
    a few large tensors rather than one small one per clip)."""
    keys = list(entries)
    return keys, {task: torch.stack([entries[key][task] for key in keys]) if keys else torch.empty(0)
                  for task in tasks}


def _unpack(packed: tuple[list[str], Mapping[str, Tensor]]) -> dict[str, dict[str, Tensor]]:
    keys, values = packed
    return {key: {task: value[row] for task, value in values.items()} for row, key in enumerate(keys)}


def _read_cache(path: Path) -> dict[str, dict[str, Tensor]]:
    """A saved cache, or an empty one (logged) when the file cannot be read: a cache miss is only slower."""
    try:
        return dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file is recomputed, never trusted
        log.warning("teacher cache %s cannot be read (%s: %s); computing the teachers' outputs again", path,
                    type(exc).__name__, exc)
        return {}


def _digest(waveform: Tensor) -> str:
    return hashlib.sha1(waveform.detach().float().cpu().numpy().tobytes()).hexdigest()[:16]
