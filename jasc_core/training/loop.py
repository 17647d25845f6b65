"""The training engine: one loop for every schedule and weighting scheme.

Per step (``Trainer.train_step``):

1. waveforms -> features on the training device (``FeatureExtractor``) -> ``JointModel`` -> logits per task;
2. ``schedule.tasks_for_step`` picks among the tasks labelled in the batch; each task's outputs and targets are cut to
   the clips labelled for it (a task no clip has is absent, never zero-filled);
3. ``weighting.task_losses`` -> unweighted per-task losses (each checked finite: a NaN/inf stops the run with a
   ``RunError`` naming task and step; the last epoch-end checkpoint stays the last good one);
4. either ``weighting.combine(losses) + sum(schedule.extra_losses)`` is back-propagated, or, for schemes with
   ``requires_task_gradients``, per-task gradients of the shared (encoder) parameters are taken with
   ``torch.autograd.grad`` and merged by ``weighting.combine_gradients``; head parameters get the gradient of their
   own task's loss;
5. clip, optimiser step (model group + the scheme's own parameters in a group without weight decay), LR step,
   ``schedule.after_step``.

Per epoch: ``schedule.on_epoch_start`` before, then validation, ``weighting.on_epoch_end`` with the epoch means of the
unweighted task losses (each over the batches that had that task), model selection on ``train.select_metric``, early
stopping, and the ``last.pt`` checkpoint with every state a resume needs (RNG and data order included), so a run
killed anywhere restarts its unfinished epoch from the previous epoch end and ends exactly as if never interrupted
(CPU, deterministic mode).

Model selection: ``val/score`` is the mean, over the tasks the model has, of scene accuracy (micro-F) and event
frame-level micro-F at the evaluation threshold. Other selectable metrics: ``val/loss`` (sum of unweighted task
losses; use ``select_mode: min``), ``val/loss/<task>``, ``val/scene/accuracy``, ``val/scene/macro_f1``,
``val/event/frame_micro_f1``, ``val/event/frame_macro_f1``.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from torch import Tensor, nn

from jasc_core.inference.clips import ClipDataset, collate, labelled_subset, to_device
from jasc_core.inference.checkpoints import load_checkpoint, restore_rng_state, rng_state, save_atomic, seed_everything
from jasc_core.contract.components import TASKS, FeatureExtractor, Schedule, Weighting
from jasc_core.contract.data import ClipList
from jasc_core.errors import ConfigError, DataError, JascError, RunError
from jasc_core.evaluation.metrics import event_frame_metrics, scene_metrics
from jasc_core.inference.runs import (
    RunFolder,
    create_run,
    default_run_name,
    new_run_dir,
    open_run,
    read_json,
    recipe_hash,
    write_json,
)

CHECKPOINT_FORMAT = 1


# -- the model as the engine runs it ---------------------------------------------------------------------------------


class Pipeline(nn.Module):
    """Feature extractor + joint model: waveforms ``[B, S]`` -> ``{task: logits}``; saved and loaded as one."""

    def __init__(self, features: FeatureExtractor, model: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.model = model

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.model.heads.keys())

    def forward(self, waveform: Tensor) -> dict[str, Tensor]:
        return self.model(self.features(waveform))


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: '{name}' requested but CUDA is not available; use 'auto' or 'cpu'")
    return device


def autocast_for(device: torch.device, enabled: bool) -> Any:
    """bf16 autocast on CUDA when ``train.amp``; a no-op elsewhere (CPU autocast is slower than fp32 here)."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms`` for the duration of a run (restored afterwards)."""
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_benchmark = torch.backends.cudnn.benchmark
    # cuBLAS needs this set before its first use to be deterministic; harmless on CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.benchmark = previous_benchmark


# -- recipe access ---------------------------------------------------------------------------------------------------


def _build(kind: str, block: Any, **kwargs: Any) -> Any:
    from jasc_core.recipes.model import build

    return build(kind, block, **kwargs)


def recipe_dict(recipe: Any) -> dict[str, Any]:
    """The resolved recipe as plain data."""
    from jasc_core.recipes.model import resolved_dict

    return resolved_dict(recipe)


def recipe_yaml(recipe: Any) -> str:
    from jasc_core.recipes.model import dump_yaml

    return dump_yaml(recipe)


def model_tasks(recipe: Any) -> list[str]:
    """Tasks the recipe's model has a head for, in ``TASKS`` order."""
    heads = recipe.model.heads
    data = heads.model_dump() if isinstance(heads, BaseModel) else dict(heads or {})
    return [task for task in TASKS if data.get(task) is not None]


def selectable_metrics(tasks: list[str]) -> list[str]:
    names = ["val/score", "val/loss"]
    for task in tasks:
        names.append(f"val/loss/{task}")
    if "scene" in tasks:
        names += ["val/scene/accuracy", "val/scene/macro_f1"]
    if "event" in tasks:
        names += ["val/event/frame_micro_f1", "val/event/frame_macro_f1"]
    return names


# -- building what a run needs ---------------------------------------------------------------------------------------


def check_before_training(recipe: Any) -> list[str]:
    """Checks that need no data: at least one head, a computable selection metric, a usable device. Returns tasks."""
    tasks = model_tasks(recipe)
    if not tasks:
        raise ConfigError("model.heads: a model needs at least one head (scene and/or event)")
    names = selectable_metrics(tasks)
    if recipe.train.select_metric not in names:
        raise ConfigError(
            f"train.select_metric: '{recipe.train.select_metric}' is not computed for this model; "
            f"choose one of {', '.join(names)}"
        )
    resolve_device(recipe.train.device)
    return tasks


@dataclass
class Labels:
    """The label vocabularies a model was trained with (stored in every checkpoint)."""

    scene: list[str] = field(default_factory=list)
    event: list[str] = field(default_factory=list)

    def n_classes(self, tasks: list[str]) -> dict[str, int]:
        return {task: len(getattr(self, task)) for task in tasks}

    def as_dict(self) -> dict[str, list[str]]:
        return {"scene": list(self.scene), "event": list(self.event)}


def load_split(dataset: Any, split: str, data_name: str) -> ClipList:
    """A split of the dataset, checked to exist and be non-empty."""
    splits = list(dataset.splits())
    if split not in splits:
        raise DataError(f"data '{data_name}' has no split '{split}'; splits: {', '.join(splits) or '(none)'}")
    clips = dataset.load(split)
    if len(clips) == 0:
        raise DataError(f"data '{data_name}': split '{split}' is empty (0 clips)")
    return clips


def labels_for(train: ClipList, tasks: list[str], data_name: str, split: str = "train") -> Labels:
    """Label vocabularies from the training split; every task with a head must have labels there."""
    present = train.tasks()
    for task in tasks:
        if task not in present:
            raise ConfigError(
                f"model.heads.{task}: data '{data_name}' has no {task} labels in split '{split}'; "
                f"remove the head or use data with {task} annotations"
            )
    labels = Labels(scene=list(train.scene_labels), event=list(train.event_labels))
    for task in tasks:
        if not getattr(labels, task):
            raise ConfigError(f"data '{data_name}': the {task} label list of split '{split}' is empty")
    return labels


def build_pipeline(recipe: Any, labels: Labels, tasks: list[str]) -> Pipeline:
    """Features + model from the recipe, sized for ``labels``; checks the heads' output sizes with a dry run."""
    from jasc_core.inference.pipeline import build_model

    if not tasks:
        raise ConfigError("model.heads: a model needs at least one head (scene and/or event)")
    features = _build("features", recipe.features)
    model = build_model(recipe.model, n_features=features.n_features, n_classes=labels.n_classes(tasks))
    pipeline = Pipeline(features, model)
    check_head_sizes(pipeline, labels, tasks)
    return pipeline


def check_head_sizes(pipeline: Pipeline, labels: Labels, tasks: list[str]) -> None:
    """A forward pass on one second of silence (eval mode: no statistics updated, no RNG drawn)."""
    was_training = pipeline.training
    pipeline.eval()
    try:
        with torch.no_grad():
            samples = int(pipeline.features.sample_rate)
            outputs = pipeline(torch.zeros(1, samples))
    finally:
        pipeline.train(was_training)
    expected = labels.n_classes(tasks)
    for task in tasks:
        got = int(outputs[task].shape[-1])
        if got != expected[task]:
            raise ConfigError(
                f"model.heads.{task}: the head outputs {got} classes but the data has {expected[task]} {task} labels"
            )


def make_loader(
    data: ClipDataset, batch_size: int, *, shuffle: bool, generator: torch.Generator, num_workers: int,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )


def clip_dataset(clips: ClipList, source: Any, features: FeatureExtractor, labels: Labels, cache: bool) -> ClipDataset:
    return ClipDataset(
        clips,
        source,
        sample_rate=int(features.sample_rate),
        hop_seconds=float(features.hop_seconds),
        n_frames_for=features.num_frames,
        scene_labels=labels.scene,
        event_labels=labels.event,
        cache=cache,
    )


# -- scores over a split ---------------------------------------------------------------------------------------------


@dataclass
class SplitScores:
    """Probabilities and targets of a split, clip-aligned; a task's arrays cover only clips labelled for it."""

    clip_ids: list[str]
    hop_seconds: float
    durations: list[float]
    scene_probs: np.ndarray | None = None  # [N, classes] over all clips
    scene_targets: np.ndarray | None = None  # [N], -1 where unlabelled
    event_probs: np.ndarray | None = None  # [N, T, classes]
    event_targets: np.ndarray | None = None  # [N, T, classes]
    event_mask: np.ndarray | None = None  # [N] bool: clip has event labels
    losses: dict[str, float] = field(default_factory=dict)


def collect_scores(
    pipeline: Pipeline, loader: torch.utils.data.DataLoader, device: torch.device, *, amp: bool = False,
    weighting: Weighting | None = None,
) -> SplitScores:
    """Run the model over a loader; with ``weighting``, also the mean unweighted loss per task."""
    pipeline.eval()
    tasks = pipeline.tasks
    clip_ids: list[str] = []
    scene_probs, scene_targets, event_probs, event_targets, event_mask = [], [], [], [], []
    loss_sums: dict[str, float] = {}
    loss_counts: dict[str, int] = {}
    with torch.no_grad():
        for batch in loader:
            batch = to_device(batch, device)
            with autocast_for(device, amp):
                outputs = pipeline(batch["waveform"])
            clip_ids += batch["clip_ids"]
            n = len(batch["clip_ids"])
            if "scene" in tasks:
                scene_probs.append(torch.softmax(outputs["scene"].float(), dim=-1).cpu().numpy())
                if "scene" in batch["targets"]:
                    targets = torch.where(batch["masks"]["scene"], batch["targets"]["scene"], -1)
                else:
                    targets = torch.full((n,), -1, dtype=torch.long)
                scene_targets.append(targets.cpu().numpy())
            if "event" in tasks:
                probs = torch.sigmoid(outputs["event"].float()).cpu().numpy()
                if "event" in batch["targets"]:
                    target = batch["targets"]["event"].cpu().numpy()
                    frames = min(probs.shape[1], target.shape[1])
                    probs, target = probs[:, :frames], target[:, :frames]
                    mask = batch["masks"]["event"].cpu().numpy()
                else:
                    target, mask = np.zeros_like(probs), np.zeros(n, dtype=bool)
                event_probs.append(probs)
                event_targets.append(target)
                event_mask.append(mask)
            if weighting is not None:
                outs, targets = labelled_subset(outputs, batch, tasks)
                for task, loss in weighting.task_losses(outs, targets).items():
                    loss_sums[task] = loss_sums.get(task, 0.0) + float(loss) * len(targets[task])
                    loss_counts[task] = loss_counts.get(task, 0) + len(targets[task])
    dataset: ClipDataset = loader.dataset  # type: ignore[assignment]
    scores = SplitScores(
        clip_ids=clip_ids,
        hop_seconds=dataset.hop_seconds,
        durations=[clip.duration for clip in dataset.clips],
    )
    if scene_probs:
        scores.scene_probs = np.concatenate(scene_probs)
        scores.scene_targets = np.concatenate(scene_targets)
    if event_probs:
        frames = min(p.shape[1] for p in event_probs)
        scores.event_probs = np.concatenate([p[:, :frames] for p in event_probs])
        scores.event_targets = np.concatenate([t[:, :frames] for t in event_targets])
        scores.event_mask = np.concatenate(event_mask)
    scores.losses = {task: loss_sums[task] / loss_counts[task] for task in loss_sums}
    return scores


def frame_level_metrics(scores: SplitScores, labels: Labels, threshold: float | np.ndarray) -> dict[str, Any]:
    """Scene and frame-level event metrics of the labelled clips (dict keyed by task)."""
    metrics: dict[str, Any] = {}
    if scores.scene_probs is not None and scores.scene_targets is not None:
        labelled = scores.scene_targets >= 0
        if labelled.any():
            metrics["scene"] = scene_metrics(
                scores.scene_targets[labelled], scores.scene_probs[labelled].argmax(axis=-1), labels.scene
            )
    if scores.event_probs is not None and scores.event_mask is not None and scores.event_mask.any():
        metrics["event"] = event_frame_metrics(
            scores.event_probs[scores.event_mask], scores.event_targets[scores.event_mask], labels.event, threshold
        )
    return metrics


def validation_summary(metrics: Mapping[str, Any], losses: Mapping[str, float]) -> dict[str, float]:
    """Flat ``val/...`` numbers of one validation pass; ``val/score`` as in the module docstring."""
    flat: dict[str, float] = {}
    parts = []
    if "scene" in metrics:
        flat["val/scene/accuracy"] = metrics["scene"]["accuracy"]
        flat["val/scene/macro_f1"] = metrics["scene"]["macro_f1"]
        parts.append(metrics["scene"]["accuracy"])
    if "event" in metrics:
        flat["val/event/frame_micro_f1"] = metrics["event"]["frame_micro_f1"]
        flat["val/event/frame_macro_f1"] = metrics["event"]["frame_macro_f1"]
        parts.append(metrics["event"]["frame_micro_f1"])
    for task, value in losses.items():
        flat[f"val/loss/{task}"] = value
    if losses:
        flat["val/loss"] = float(sum(losses.values()))
    flat["val/score"] = float(np.mean(parts)) if parts else 0.0
    return flat


# -- LR schedule and optimiser ---------------------------------------------------------------------------------------


def lr_lambda(config: Any, steps_per_epoch: int, epochs: int) -> Any:
    """Multiplier of the peak LR per optimiser step: linear warmup, then constant or cosine to ``min_lr``."""
    warmup = int(round(config.lr_schedule.warmup_epochs * steps_per_epoch))
    total = max(1, epochs * steps_per_epoch)
    floor = config.lr_schedule.min_lr / config.optimizer.lr

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.lr_schedule.name == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_optimizer(config: Any, model_params: list[nn.Parameter], scheme_params: list[nn.Parameter]) -> Any:
    groups: list[dict[str, Any]] = [{"params": model_params, "weight_decay": config.optimizer.weight_decay}]
    if scheme_params:
        # The scheme's own parameters (e.g. uncertainty log-variances) must not be pulled towards 0 by weight decay.
        groups.append({"params": scheme_params, "weight_decay": 0.0})
    classes = {"radam": torch.optim.RAdam, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    return classes[config.optimizer.name](groups, lr=config.optimizer.lr)


# -- progress --------------------------------------------------------------------------------------------------------


def show_progress() -> bool:
    """Rich progress bars only on an interactive terminal, never under pytest."""
    return sys.stderr.isatty() and "PYTEST_CURRENT_TEST" not in os.environ


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.progress = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"), transient=True,
            )

    def __enter__(self) -> _Progress:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def add(self, description: str, total: int) -> Any:
        return self.progress.add_task(description, total=total, info="") if self.progress is not None else None

    def update(self, task: Any, info: str) -> None:
        if self.progress is not None:
            self.progress.update(task, advance=1, info=info)

    def remove(self, task: Any) -> None:
        if self.progress is not None:
            self.progress.remove_task(task)

    def log(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False)
        elif "PYTEST_CURRENT_TEST" not in os.environ:
            # No terminal (a log file, CI): one plain line per epoch instead of bars.
            print(text, file=sys.stderr, flush=True)


# -- the trainer -----------------------------------------------------------------------------------------------------


class Trainer:
    """One run: builds everything from a recipe, trains with resume support, writes the run folder."""

    def __init__(self, recipe: Any, run: RunFolder, *, resume: bool) -> None:
        self.recipe = recipe
        self.run = run
        self.config = recipe.train
        self.resuming = resume
        self.resolved = recipe_dict(recipe)
        self.hash = recipe_hash(self.resolved)
        self.device = resolve_device(self.config.device)
        self.tasks = check_before_training(recipe)

    # setup --------------------------------------------------------------------------------------------------------

    def setup(self) -> None:
        recipe, config = self.recipe, self.config
        seed_everything(recipe.seed)
        data_name = recipe.data.name
        self.dataset = _build("dataset", recipe.data)
        self.dataset.prepare()
        train_clips = load_split(self.dataset, config.train_split, data_name)
        val_clips = load_split(self.dataset, config.val_split, data_name)
        self.labels = labels_for(train_clips, self.tasks, data_name, config.train_split)
        self.pipeline = build_pipeline(recipe, self.labels, self.tasks).to(self.device)
        self.weighting: Weighting = _build("weighting", recipe.weighting)
        self.schedule: Schedule = _build("schedule", recipe.schedule)
        features = self.pipeline.features
        cache = config.cache_audio
        self.train_data = clip_dataset(train_clips, self.dataset, features, self.labels, cache)
        self.val_data = clip_dataset(val_clips, self.dataset, features, self.labels, cache)
        # Data order comes from its own generator so that it is saved and restored on its own (resume).
        self.data_generator = torch.Generator().manual_seed(recipe.seed)
        pin = self.device.type == "cuda"
        self.train_loader = make_loader(
            self.train_data, config.batch_size, shuffle=True, generator=self.data_generator,
            num_workers=config.num_workers, pin_memory=pin,
        )
        self.val_loader = make_loader(
            self.val_data, config.batch_size, shuffle=False, generator=torch.Generator().manual_seed(0),
            num_workers=config.num_workers, pin_memory=pin,
        )
        self.steps_per_epoch = len(self.train_loader)
        # Normalisation statistics from the training split; they are buffers of the features module, so they are
        # saved with the model.
        self.pipeline.features.fit_normalization(self._train_waveforms())

        for param in self.weighting.parameters():
            # The scheme may have created its parameters on the CPU; move the data, keeping the same leaf tensor.
            param.data = param.data.to(self.device)
        self.model_params = [p for p in self.pipeline.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(config, self.model_params, list(self.weighting.parameters()))
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(config, self.steps_per_epoch, config.epochs)
        )
        self.schedule.setup(
            self.pipeline.model,
            {"epochs": config.epochs, "steps_per_epoch": self.steps_per_epoch, "device": self.device,
             "tasks": list(self.tasks)},
        )
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.step = 0
        self.best: dict[str, Any] = {"metric": config.select_metric, "value": None, "epoch": None}
        self.bad_epochs = 0
        self.stopped = False

    def _train_waveforms(self) -> Iterator[Tensor]:
        loader = make_loader(
            self.train_data, self.config.batch_size, shuffle=False, generator=torch.Generator().manual_seed(0),
            num_workers=self.config.num_workers,
        )
        for batch in loader:
            yield batch["waveform"].to(self.device)

    # checkpoints --------------------------------------------------------------------------------------------------

    def state(self, epoch: int) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "step": self.step,
            "model": self.pipeline.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "weighting": self.weighting.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": rng_state(self.data_generator),
            "history": self.history,
            "best": dict(self.best),
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "recipe_hash": self.hash,
            "labels": self.labels.as_dict(),
            "tasks": list(self.tasks),
        }

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        if checkpoint.get("recipe_hash") != self.hash:
            raise RunError(f"{self.run.last} was written for a different recipe; start a new run")
        self.pipeline.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
        self.weighting.load_state_dict(checkpoint["weighting"])
        self.schedule.load_state_dict(checkpoint["schedule"])
        self.history = list(checkpoint["history"])
        self.best = dict(checkpoint["best"])
        self.bad_epochs = int(checkpoint["bad_epochs"])
        self.stopped = bool(checkpoint["stopped"])
        self.step = int(checkpoint["step"])
        self.start_epoch = int(checkpoint["epoch"]) + 1
        restore_rng_state(checkpoint["rng"], self.data_generator)

    # the loop -----------------------------------------------------------------------------------------------------

    def fit(self) -> None:
        from jasc_core.contract.registry import get_registry

        hook = get_registry().hook
        self.setup()
        if self.resuming and self.run.last.is_file():
            self.restore(load_checkpoint(self.run.last))
        hook.jasc_run_start(run_dir=str(self.run.root), recipe=self.resolved)
        with _Progress(show_progress()) as progress:
            for epoch in range(self.start_epoch, self.config.epochs):
                if self.stopped:
                    break
                record = self.train_epoch(epoch, progress)
                record.update(self.validate_epoch())
                self.weighting.on_epoch_end(
                    {"epoch": epoch, "train_losses": record["train_losses"], "step": self.step}
                )
                # The weights this epoch trained with (the contract in docs/weighting.md: the same before and after
                # on_epoch_end), beside the unweighted losses they multiplied.
                record["weights"] = {k: float(v) for k, v in self.weighting.effective_weights().items()}
                record["time"] = time.time() - record.pop("_start")
                improved = self.select(epoch, record)
                self.history.append(record)
                self.save(epoch, improved)
                progress.log(_epoch_line(epoch, self.config.epochs, record))
                hook.jasc_epoch_end(run_dir=str(self.run.root), epoch=epoch, metrics=flatten_record(record))

    def train_epoch(self, epoch: int, progress: _Progress) -> dict[str, Any]:
        pipeline = self.pipeline
        pipeline.train()
        self.schedule.on_epoch_start(pipeline.model, epoch)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        start = time.time()
        clips = 0
        bar = progress.add(f"epoch {epoch + 1}/{self.config.epochs}", self.steps_per_epoch)
        for batch in self.train_loader:
            losses = self.train_step(to_device(batch, self.device), epoch)
            for task, value in losses.items():
                sums[task] = sums.get(task, 0.0) + value
                counts[task] = counts.get(task, 0) + 1
            clips += len(batch["clip_ids"])
            rate = clips / max(1e-9, time.time() - start)
            progress.update(bar, " ".join(f"{t} {v:.4f}" for t, v in losses.items()) + f" | {rate:.1f} clips/s")
        progress.remove(bar)
        elapsed = time.time() - start
        return {
            "epoch": epoch,
            "_start": start,
            "step": self.step,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "train_losses": {task: sums[task] / counts[task] for task in sums},
            "train_clips_per_s": clips / max(1e-9, elapsed),
        }

    def train_step(self, batch: dict[str, Any], epoch: int) -> dict[str, float]:
        pipeline, weighting = self.pipeline, self.weighting
        available = frozenset(task for task in self.tasks if task in batch["targets"])
        tasks = self.schedule.tasks_for_step(self.step, epoch, available) & available
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_for(self.device, self.config.amp):
            features = pipeline.features(batch["waveform"])
            outputs = pipeline.model(features)
        outs, targets = labelled_subset(outputs, batch, sorted(tasks))
        losses = weighting.task_losses(outs, targets)
        for task, loss in losses.items():
            self._check_finite(task, loss, epoch)
        shared = [p for p in pipeline.model.encoder.parameters() if p.requires_grad]
        context = {"step": self.step, "epoch": epoch, "seed": self.recipe.seed, "shared_parameters": shared,
                   "model": pipeline.model, "tasks": sorted(tasks)}
        extra = self.schedule.extra_losses(pipeline.model, features, outputs, batch, context)
        for name, loss in extra.items():
            self._check_finite(f"extra loss '{name}'", loss, epoch)
        if not losses and not extra:
            self.step += 1
            return {}
        if weighting.requires_task_gradients and losses:
            self._backward_task_gradients(losses, extra, shared, context)
        else:
            total = weighting.combine(losses, context) if losses else 0.0
            for loss in extra.values():
                total = total + loss
            self._check_finite("combined", total, epoch)
            total.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model_params, self.config.grad_clip)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.schedule.after_step(pipeline.model, context)
        self.step += 1
        return {task: float(loss.detach()) for task, loss in losses.items()}

    def _backward_task_gradients(
        self, losses: dict[str, Tensor], extra: dict[str, Tensor], shared: list[nn.Parameter], context: dict[str, Any]
    ) -> None:
        """Per-task gradients of the shared parameters -> ``combine_gradients``; heads get their own task's grad."""
        grads: dict[str, list[Tensor]] = {}
        for task, loss in losses.items():
            raw = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
            grads[task] = [g if g is not None else torch.zeros_like(p) for g, p in zip(raw, shared, strict=True)]
        combined = list(self.weighting.combine_gradients(grads, losses, context))
        if len(combined) != len(shared):
            raise RunError(
                f"weighting '{self.weighting.name}': combine_gradients returned {len(combined)} tensors for "
                f"{len(shared)} shared parameters"
            )
        if extra:
            extra_total = sum(extra.values())
            raw = torch.autograd.grad(extra_total, shared, retain_graph=True, allow_unused=True)
            combined = [c if g is None else c + g for c, g in zip(combined, raw, strict=True)]
        shared_ids = {id(p) for p in shared}
        others = [p for p in self.model_params if id(p) not in shared_ids]
        if others:
            # Each head's parameters only see their own task's loss, so the weighted loss gives every head the
            # gradient of its own loss times the weight the scheme gives that task (GradNorm's w, PCGrad's
            # alpha/beta), and extra losses their share; the shared gradients were set above.
            rest = self.weighting.combine(losses, context) + sum(extra.values())
            rest.backward(inputs=others)
        for param, grad in zip(shared, combined, strict=True):
            param.grad = grad.detach().to(param.dtype)

    def _check_finite(self, what: str, loss: Any, epoch: int) -> None:
        if isinstance(loss, Tensor) and not bool(torch.isfinite(loss.detach()).all()):
            last = self.run.last if self.run.last.is_file() else None
            where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
            message = (
                f"non-finite {what} loss ({float(loss.detach().float().mean())}) at step {self.step + 1} "
                f"(epoch {epoch + 1}, batch {self.step - epoch * self.steps_per_epoch + 1}); training stopped, "
                f"{where}. Try a lower train.optimizer.lr or train.grad_clip."
            )
            self.run.update_meta(status="failed", error=message)
            raise RunError(message)

    def validate_epoch(self) -> dict[str, Any]:
        scores = collect_scores(self.pipeline, self.val_loader, self.device, amp=self.config.amp,
                                weighting=self.weighting)
        metrics = frame_level_metrics(scores, self.labels, self.recipe.evaluate.threshold)
        return {"val": validation_summary(metrics, scores.losses)}

    def select(self, epoch: int, record: dict[str, Any]) -> bool:
        value = record["val"].get(self.config.select_metric)
        if value is None:
            raise RunError(f"train.select_metric '{self.config.select_metric}' was not computed in epoch {epoch + 1}")
        best = self.best["value"]
        better = best is None or (value > best if self.config.select_mode == "max" else value < best)
        if better:
            self.best.update(value=float(value), epoch=epoch)
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.config.early_stopping is not None and self.bad_epochs >= self.config.early_stopping:
                self.stopped = True
        record["selected"] = better
        return better

    def save(self, epoch: int, improved: bool) -> None:
        state = self.state(epoch)
        if improved:
            save_atomic(
                {key: state[key] for key in ("format", "epoch", "step", "model", "recipe_hash", "labels", "tasks",
                                             "best")}
                | {"val": self.history[-1]["val"]},
                self.run.best,
            )
        save_atomic(state, self.run.last)
        write_json(self.run.history, self.history)


def flatten_record(record: Mapping[str, Any]) -> dict[str, float]:
    flat: dict[str, float] = {"epoch": float(record["epoch"]), "lr": float(record["lr"])}
    for task, value in record.get("train_losses", {}).items():
        flat[f"train/loss/{task}"] = float(value)
    for task, value in record.get("weights", {}).items():
        flat[f"weight/{task}"] = float(value)
    flat.update({k: float(v) for k, v in record.get("val", {}).items()})
    return flat


def _epoch_line(epoch: int, epochs: int, record: Mapping[str, Any]) -> str:
    losses = " ".join(f"{t}={v:.4f}" for t, v in record["train_losses"].items())
    val = " ".join(f"{k.removeprefix('val/')}={v:.4f}" for k, v in record["val"].items() if "loss" not in k)
    return f"epoch {epoch + 1}/{epochs}: loss {losses} | {val} | {record['time']:.1f}s"


# -- public API ------------------------------------------------------------------------------------------------------


def _check_resume(run: RunFolder, recipe: Any) -> None:
    meta = run.read_meta()
    resolved = recipe_dict(recipe)
    if meta.get("recipe_hash") == recipe_hash(resolved):
        return
    changed = []
    try:
        import yaml

        stored = yaml.safe_load(run.recipe.read_text(encoding="utf-8")) or {}
        changed = [key for key in ("seed", "data", "features", "model", "weighting", "schedule", "train")
                   if stored.get(key) != resolved.get(key)]
    except Exception:  # the hash already says it changed; the block names are a courtesy
        pass
    detail = f" (changed: {', '.join(changed)})" if changed else ""
    raise RunError(
        f"cannot resume {run.root}: the recipe differs from the one the run started with{detail}; "
        f"resume with the run's own {run.recipe} or start a new run"
    )


def run_recipe(
    recipe: Any, *, recipe_path: str | Path | None, out_dir: str | Path | None = None,
    resume: str | Path | None = None, evaluate: bool = True,
) -> Path:
    """Train a recipe into a run folder (new, or ``resume``d), then evaluate it; returns the run folder."""
    from jasc_core import __version__

    if resume is not None:
        run = open_run(resume)
        if recipe is None:
            from jasc_core.recipes.model import load_recipe

            recipe = load_recipe(run.recipe)
        _check_resume(run, recipe)
        run.update_meta(status="running", error=None)
    else:
        if recipe is None:
            raise RunError("run_recipe needs a recipe (or resume=RUN_DIR)")
        check_before_training(recipe)  # fail before a run folder exists
        if out_dir is not None:
            root = Path(out_dir)
            if root.exists() and any(root.iterdir()):
                raise RunError(f"{root} exists and is not empty; choose a new --out or --resume {root}")
            root.mkdir(parents=True, exist_ok=True)
        else:
            name = recipe.output.name or default_run_name(recipe_path)
            root = new_run_dir(recipe.output.dir, name)
        run = create_run(root, recipe_yaml=recipe_yaml(recipe), resolved=recipe_dict(recipe), version=__version__)

    with deterministic_mode(recipe.train.deterministic):
        try:
            trainer = Trainer(recipe, run, resume=resume is not None)
            trainer.fit()
        except KeyboardInterrupt:
            run.update_meta(status="interrupted")
            raise
        except JascError as exc:
            if resume is None and not run.last.is_file():
                # Stopped before its first checkpoint (data missing, sizes mismatch, an early NaN): a new run folder
                # holds nothing to resume, and leaving it would make the same command fail on a non-empty --out.
                shutil.rmtree(run.root, ignore_errors=True)
            elif run.read_meta().get("status") != "failed":
                run.update_meta(status="failed", error=str(exc))
            raise
        run.update_meta(status="trained", epochs_trained=len(trainer.history), best=trainer.best)
        if evaluate:
            from jasc_core.evaluation import evaluate_run, tune_thresholds

            if recipe.evaluate.tune_thresholds is not None:
                tune_thresholds(run.root, recipe.evaluate.tune_thresholds, split=recipe.train.val_split, recipe=recipe,
                                level=recipe.evaluate.tune_level)
            metrics = evaluate_run(run.root, split=recipe.evaluate.split, recipe=recipe)
        else:
            metrics = {}
    from jasc_core.contract.registry import get_registry

    run.update_meta(status="finished")
    get_registry().hook.jasc_run_end(run_dir=str(run.root), metrics=_flat_metrics(metrics))
    return run.root


def _flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(_flat_metrics(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def load_trained(run_dir: str | Path, *, recipe: Any = None, device: str | None = None) -> tuple[Any, Pipeline, Labels]:
    """A run's recipe, its best model (``last.pt`` if no best was written) on ``device``, and its labels."""
    run = open_run(run_dir)
    if recipe is None:
        from jasc_core.recipes.model import load_recipe

        recipe = load_recipe(run.recipe)
    path = run.best if run.best.is_file() else run.last
    if not path.is_file():
        raise RunError(f"{run.root} has no checkpoint yet (checkpoints/best.pt); train it with `jasc run --resume`")
    checkpoint = load_checkpoint(path)
    labels = Labels(**checkpoint["labels"])
    tasks = list(checkpoint["tasks"])
    pipeline = build_pipeline(recipe, labels, tasks)
    pipeline.load_state_dict(checkpoint["model"])
    pipeline.to(resolve_device(device or recipe.train.device)).eval()
    return recipe, pipeline, labels


def predict_scores(
    run_dir: str | Path, split: str, *, recipe: Any = None, device: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str], float]:
    """Probabilities and targets of a split from a run's best model.

    Returns ``(scores, targets, clip_ids, hop_seconds)``: ``scores["scene"] [N, classes]``, ``targets["scene"] [N]``
    (-1 unlabelled) and ``scores["event"]``, ``targets["event"] [N, T, classes]`` (event arrays only for the clips
    with event labels when the split has some; ``clip_ids`` lists all clips).
    """
    split_scores, _ = score_split(run_dir, split, recipe=recipe, device=device)
    scores: dict[str, np.ndarray] = {}
    targets: dict[str, np.ndarray] = {}
    if split_scores.scene_probs is not None:
        scores["scene"], targets["scene"] = split_scores.scene_probs, split_scores.scene_targets
    if split_scores.event_probs is not None:
        scores["event"], targets["event"] = split_scores.event_probs, split_scores.event_targets
    return scores, targets, split_scores.clip_ids, split_scores.hop_seconds


def score_split(
    run_dir: str | Path, split: str, *, recipe: Any = None, device: str | None = None
) -> tuple[SplitScores, tuple[Any, Pipeline, Labels, ClipList]]:
    """``SplitScores`` of a split plus what produced them (recipe, pipeline, labels, clip list)."""
    recipe, pipeline, labels = load_trained(run_dir, recipe=recipe, device=device)
    dataset = _build("dataset", recipe.data)
    dataset.prepare()
    clips = load_split(dataset, split, recipe.data.name)
    data = clip_dataset(clips, dataset, pipeline.features, labels, cache=False)
    loader = make_loader(data, recipe.train.batch_size, shuffle=False, generator=torch.Generator().manual_seed(0),
                         num_workers=recipe.train.num_workers)
    device_ = next(iter(pipeline.parameters())).device
    scores = collect_scores(pipeline, loader, device_, amp=recipe.train.amp)
    return scores, (recipe, pipeline, labels, clips)


def evaluate_run(run_dir: str | Path, split: str = "eval", *, recipe: Any = None, **kwargs: Any) -> dict[str, Any]:
    """Evaluate a run's best checkpoint on ``split`` (see ``jasc_core.evaluation.evaluate_run``)."""
    from jasc_core.evaluation import evaluate_run as _evaluate

    return _evaluate(run_dir, split=split, recipe=recipe, **kwargs)


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    run = open_run(run_dir)
    return read_json(run.history) if run.history.is_file() else []


__all__ = [
    "Pipeline",
    "SplitScores",
    "Trainer",
    "evaluate_run",
    "load_trained",
    "predict_scores",
    "run_recipe",
    "score_split",
]
