"""The training loop: one loop for every schedule and weighting scheme (``Trainer.fit`` reads on one screen).

The trainer receives built parts (``TrainingParts``: runtime, pipeline, weighting, schedule, stream readers,
validation loaders, labels) and a run folder. Per phase (``Schedule.phases``) it sets the trainable parameter groups,
builds optimiser and LR schedule, and resets early stopping and model selection; per epoch it asks the schedule for
each step's plan, reads the planned streams, takes one optimiser step (``jasc_core.training.step``), validates,
tells the weighting the epoch's losses, selects, and writes ``last.pt`` with every state a resume needs (streams'
positions and RNG included), so a run killed anywhere restarts its unfinished epoch from the previous epoch end and
ends as if never interrupted (CPU, deterministic mode). With ``train.checkpoint_every``, and on a stopping signal,
``last.pt`` is also written between steps, and a resume continues inside the epoch (``jasc_core.training.mid_epoch``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from jasc_core.contract.batch import Batch
from jasc_core.contract.components import Augmentation
from jasc_core.contract.context import EpochContext, SetupContext, StepContext
from jasc_core.contract.json_types import JSONMapping, JSONObject
from jasc_core.contract.schedule import Phase, Schedule
from jasc_core.contract.weighting import Weighting
from jasc_core.data.loaders import collate
from jasc_core.errors import RunError
from jasc_core.evaluation.validation import task_metrics, validation_summary
from jasc_core.inference.scoring import collect_scores
from jasc_core.model.pipeline import Labels, Pipeline
from jasc_core.recipes.model import resolved_dict
from jasc_core.recipes.types import Recipe
from jasc_core.runs.checkpoints import Checkpoint, TrainingState, load_checkpoint
from jasc_core.runs.folder import RunFolder, write_json
from jasc_core.runs.rng import restore_rng_state, rng_state
from jasc_core.training.compile import compile_models, use_channels_last
from jasc_core.training.mid_epoch import CheckpointClock, EpochProgress, partial_state, progress_for
from jasc_core.training.optim import build_optimizer, keep_frozen_in_eval, lr_lambda, set_trainable
from jasc_core.training.progress import Progress, show_progress
from jasc_core.training.runtime import Runtime
from jasc_core.training.signals import Stopped, StopSignals
from jasc_core.training.step import backward, step_losses
from jasc_core.training.step_counts import steps_line, steps_trained

if TYPE_CHECKING:  # the loop only calls what run.py built
    from jasc_core.training.distill import Distiller
    from jasc_core.training.hooks import RunHooks
from jasc_core.training.streams import StreamReader


@dataclass
class TrainingParts:
    """What the loop is given; ``jasc_core.training.run.build_parts`` makes it from a recipe."""

    recipe: Recipe
    runtime: Runtime
    pipeline: Pipeline
    weighting: Weighting
    schedule: Schedule
    streams: dict[str, StreamReader]
    val_loaders: list[torch.utils.data.DataLoader[Batch]]
    labels: Labels
    tasks: tuple[str, ...]
    recipe_hash: str
    #: The dataset's stand-in phrase when it serves substitute data (``Dataset.stand_in``), else None.
    stand_in: str | None = None
    #: The recipe's ``augment`` list, applied in order to training features only.
    augmentations: list[Augmentation] = field(default_factory=list)
    #: What ``model.init`` loaded, skipped and left random (``jasc_core.training.init``), else None.
    init: JSONObject | None = None
    #: The recipe's ``distill`` block built (``jasc_core.training.distill.Distiller``), else None.
    distiller: Distiller | None = None


class Trainer:
    """Trains one run's parts into its run folder, resumable at any epoch end."""

    def __init__(self, parts: TrainingParts, run: RunFolder) -> None:
        self.parts, self.run = parts, run
        self.recipe, self.config, self.runtime = parts.recipe, parts.recipe.train, parts.runtime
        self.pipeline, self.weighting, self.schedule = parts.pipeline, parts.weighting, parts.schedule
        self.model = self.pipeline.model
        use_channels_last(self.model, self.config.channels_last)  # before DDP and setup: a teacher copies the layout
        self.wrapped = self.runtime.wrap(self.pipeline)
        self.groups = self.model.parameter_groups()
        self.infos = {name: reader.info for name, reader in parts.streams.items()}
        self.setup = SetupContext(self.config.epochs, parts.tasks, self.infos, self.runtime.device, self.recipe.seed,
                                  self.config.steps_per_epoch)
        self.schedule.setup(self.model, self.setup)
        # After setup: an EMA teacher is a deep copy of the student, made before the student is compiled in place.
        self.compiled = compile_models([self.model, *self.schedule.extra_models().values()], self.config.compile,
                                       self.runtime.device)
        self.phases = self._checked_phases()
        self.history: list[JSONObject] = []
        self.step, self.start_epoch, self.phase_index = 0, 0, -1
        self.best: JSONObject = {"metric": self.config.select_metric, "value": None, "epoch": None}
        self.bad_epochs, self.stopped = 0, False
        self.epoch_step = 0
        # Augmentations draw from their own generator, saved in checkpoints: a resumed run draws the same masks.
        self.augment_generator = torch.Generator().manual_seed(self.recipe.seed)
        # Mid-epoch checkpoints and stopping signals (``jasc_core.training.mid_epoch``): ``run_recipe`` installs the
        # handlers; uninstalled, no signal is ever recorded. ``partial``: a mid-epoch checkpoint's epoch progress.
        self.stop = StopSignals()
        self.checkpoint_clock = CheckpointClock(self.config.checkpoint_every)
        self.partial: JSONObject | None = None

    def _checked_phases(self) -> list[tuple[int, Phase]]:
        phases, first, placed = self.schedule.phases(self.setup), 0, []
        for phase in phases:
            placed.append((first, phase))
            first += phase.epochs
        if first != self.config.epochs or any(p.epochs < 1 for p in phases):
            raise RunError(f"schedule '{self.schedule.name}': its phases "
                           f"({', '.join(f'{p.name} {p.epochs}' for p in phases)}) do not add up to "
                           f"train.epochs = {self.config.epochs}")
        return placed

    # phases -------------------------------------------------------------------------------------------------------

    def phase_of(self, epoch: int) -> tuple[int, int, Phase]:
        index = max(i for i, (first, _) in enumerate(self.phases) if first <= epoch)
        return index, self.phases[index][0], self.phases[index][1]

    def enter_phase(self, index: int, resuming: bool) -> None:
        """Trainable groups, optimiser, LR schedule and selection of phase ``index``."""
        _, phase = self.phases[index]
        best = self.runtime.from_main(lambda: load_checkpoint(self.run.best).model
                                      if index > 0 and not resuming and self.run.best.is_file() else None)
        if best is not None:
            # The next phase starts from the best model of the one before (FreezeMTL freezes the best first task).
            self.pipeline.load_state_dict(best)
        self.phase, self.phase_index = phase, index
        self.trainable = set_trainable(self.groups, phase.train)
        self.shared = [p for p in self.groups["encoder"].parameters() if p.requires_grad]
        self.steps_per_epoch = self.schedule.epoch_steps(phase, self.setup)
        self.optimizer = build_optimizer(self.config, self.trainable, list(self.weighting.parameters()))
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.config, self.steps_per_epoch, phase.epochs))
        if not resuming:
            metric = phase.select_metric or self.config.select_metric
            self.best = {"metric": metric, "value": None, "epoch": None}
            self.bad_epochs, self.stopped = 0, False

    # the loop -----------------------------------------------------------------------------------------------------

    def fit(self, hook: RunHooks, resume: bool) -> None:
        if resume:
            checkpoint = self.runtime.from_main(lambda: load_checkpoint(self.run.last) if self.run.last.is_file() else None)
            if checkpoint is not None:
                self.restore(checkpoint)
        self.runtime.main_only(lambda: hook.jasc_run_start(run_dir=str(self.run.root), recipe=resolved_dict(self.recipe)))
        with Progress(show_progress() and self.runtime.is_main, timed=self.runtime.is_main) as progress:
            if self.runtime.is_main:
                progress.log(runtime_line(self))
            for epoch in range(self.start_epoch, self.config.epochs):
                index, first, phase = self.phase_of(epoch)
                if index != self.phase_index:
                    self.enter_phase(index, resuming=False)
                elif self.stopped:
                    continue  # early stopping ends the phase, not the run
                record = self.train_epoch(epoch, progress)
                if self.parts.distiller is not None:
                    self.parts.distiller.save()  # each process its own cache file: a resume reads it back
                record.update(self.validate())
                self.weighting.on_epoch_end(EpochContext(epoch, self.step, phase.name, record["train_losses"]))
                # The weights this epoch trained with, beside the unweighted losses they multiplied.
                record["weights"] = {k: float(v) for k, v in self.weighting.effective_weights().items()}
                record["time"] = time.time() - record.pop("_start")
                improved = self.select(epoch, record)
                self.history.append(record)
                self.runtime.main_only(lambda e=epoch, i=improved, r=record: self.end_epoch(e, i, r, progress, hook))
            if self.runtime.is_main:
                progress.log(steps_line(steps_trained(self.history)))

    def end_epoch(self, epoch: int, improved: bool, record: JSONObject, progress: Progress, hook: RunHooks) -> None:
        """The main process's part of an epoch end: checkpoints and history, the console line, the hooks."""
        self.save(epoch, improved)
        left = progress.time_left(record["time"], self.config.epochs - epoch - 1)
        progress.log(epoch_line(epoch, self.config.epochs, record) + left)
        hook.jasc_epoch_end(run_dir=str(self.run.root), epoch=epoch + 1, metrics=flatten_record(record))

    def train_epoch(self, epoch: int, progress: Progress) -> JSONObject:
        self.pipeline.train()
        self.weighting.train()
        self.schedule.on_epoch_start(self.model, epoch)
        keep_frozen_in_eval(self.groups, self.phase.train)
        done = progress_for(self.partial, self.runtime.rank, self.runtime.world_size)  # a resume inside the epoch
        self.partial = None
        self.checkpoint_clock.reset()
        start = time.time() - done.seconds
        bar = progress.add(f"epoch {epoch + 1}/{self.config.epochs}", self.steps_per_epoch - done.steps)
        for number in range(done.steps, self.steps_per_epoch):
            self.epoch_step = number
            plan = self.schedule.plan_step(self.step, epoch, self.phase, self.infos)
            batches = [collate([item for name in names for item in self.parts.streams[name].next()])
                       for names in plan.batches]
            allowed = plan.tasks if plan.tasks is not None else self.phase.tasks
            tasks = tuple(t for t in self.parts.tasks if allowed is None or t in allowed)
            losses = self.train_step((batches, tasks), epoch)
            done.add(losses, sum(len(batch) for batch in batches))
            rate = done.clips / max(1e-9, time.time() - start)
            progress.update(bar, " ".join(f"{t} {v:.4f}" for t, v in losses.items()) + f" | {rate:.1f} clips/s")
            progress.step_done(self.steps_per_epoch, self.config.epochs - epoch)
            self.step_boundary(epoch, done, start)
        progress.remove(bar)
        means = self.runtime.epoch_means(done.sums, done.counts)
        return {"epoch": epoch + 1, "_start": start, "step": self.step, "phase": self.phase.name,
                "lr": float(self.optimizer.param_groups[0]["lr"]),
                "train_losses": {k: v for k, v in means.items() if not k.startswith("extra/")},
                # Optimiser steps in which each task's loss counted (the same on every process: losses are shared).
                "task_steps": {k: n for k, n in done.counts.items() if not k.startswith("extra/")},
                "extra_losses": {k.removeprefix("extra/"): v for k, v in means.items() if k.startswith("extra/")},
                "train_clips_per_s": done.clips / max(1e-9, time.time() - start)}

    def step_boundary(self, epoch: int, done: EpochProgress, start: float) -> None:
        """After an optimiser step: a mid-epoch checkpoint when ``train.checkpoint_every`` has passed or a stopping
        signal arrived, then the stop; decided by all processes together, so they stop after the same step."""
        due = self.runtime.is_main and self.checkpoint_clock.due() and done.steps < self.steps_per_epoch
        signum, save = self.runtime.max_over_processes([self.stop.signum or 0, int(due)])
        if signum or save:
            self.save_mid_epoch(epoch, done, time.time() - start)
        if signum:
            raise Stopped(signum)

    def save_mid_epoch(self, epoch: int, done: EpochProgress, seconds: float) -> None:
        """``last.pt`` at this step boundary: the state of the last completed epoch's checkpoint, taken now, with
        every process's progress through epoch ``epoch`` (``jasc_core.training.mid_epoch``)."""
        partial = partial_state(self.runtime.all_gather(done), seconds)

        def write() -> None:
            checkpoint = self.checkpoint(epoch - 1)
            checkpoint.training.partial = partial
            checkpoint.save(self.run.last)

        self.runtime.main_only(write)
        self.checkpoint_clock.reset()

    def train_step(self, step_input: tuple[list[Batch], tuple[str, ...]], epoch: int) -> dict[str, float]:
        """One optimiser step on the planned batches; returns the unweighted task losses and ``extra/<name>``."""
        batches, tasks = step_input
        context = StepContext(self.step, epoch, self.phase.name, self.recipe.seed, tasks, self.model, self.shared)
        self.optimizer.zero_grad(set_to_none=True)
        bad: list[tuple[str, float]] = []

        def check(what: str, loss: object) -> None:
            if isinstance(loss, Tensor) and not bool(torch.isfinite(loss.detach()).all()):
                bad.append((what, float(loss.detach().float().mean())))

        with self.runtime.gradient_sync(self.wrapped):
            losses, extra = step_losses(batches, self.wrapped, self.model, self.runtime, self.weighting,
                                        self.schedule, context, check,
                                        self.augment if self.parts.augmentations else None, self.parts.distiller)
            self._stop_if_not_finite(bad, epoch)
            # Always (a step without losses has nothing to back-propagate): every process joins the collectives.
            backward(losses, extra, self.weighting, context, self.trainable, check, self.runtime)
        self._stop_if_not_finite(bad, epoch)
        self.runtime.average_gradients(self.weighting.parameters())
        if losses or extra:
            if self.config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.trainable, self.config.grad_clip)
            self.optimizer.step()
        # The LR schedule counts planned steps, so it stays in step with the plan even when a batch had no label.
        self.lr_scheduler.step()
        # Every process continues from the main process's batch-norm statistics (the EMA teacher follows them).
        self.runtime.sync_buffers([self.pipeline])
        self.schedule.after_step(self.model, context)
        self.runtime.sync_buffers(self.schedule.extra_models().values())
        self.step += 1
        return {**{t: float(v.detach()) for t, v in losses.items()},
                **{f"extra/{n}": float(v.detach()) for n, v in extra.items()}}

    def augment(self, features: Tensor, batch: Batch) -> tuple[Tensor, Batch]:
        batch = batch.replace(n_classes=self.parts.labels.n_classes(self.parts.tasks))
        for augmentation in self.parts.augmentations:
            features, batch = augmentation(features, batch, self.augment_generator)
            if not isinstance(batch, Batch):  # an augmentation written for the dict batch of earlier releases
                batch = Batch(**batch)
        return features, batch

    def _stop_if_not_finite(self, bad: list[tuple[str, float]], epoch: int) -> None:
        """Stop every process at this step when any process saw a non-finite loss (all decide together: a process
        that stopped alone would leave the others waiting in the step's next collective)."""
        if not self.runtime.any_process(bool(bad)):
            return
        last = self.run.last if self.run.last.is_file() else None
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        what = f"non-finite {bad[0][0]} loss ({bad[0][1]})" if bad else "a non-finite loss on another process"
        message = (f"{what} at step {self.step + 1} (epoch {epoch + 1}, batch {self.epoch_step + 1}); training "
                   f"stopped, {where}. Try a lower train.optimizer.lr or train.grad_clip.")
        self.runtime.main_only(lambda: self.run.update_meta(status="failed", error=message))
        raise RunError(message)

    # validation and selection -------------------------------------------------------------------------------------

    def validate(self) -> JSONObject:
        scores = collect_scores(self.wrapped, self.parts.val_loaders, self.runtime.device, self.parts.tasks,
                                precision=self.runtime.precision, weighting=self.weighting)
        scores = self.runtime.gather(scores)
        metrics = task_metrics(scores, self.parts.labels, self.recipe.evaluate.threshold)
        return {"val": validation_summary(metrics, scores.losses)}

    def select(self, epoch: int, record: JSONObject) -> bool:
        metric = self.best["metric"]
        value = record["val"].get(metric)
        if value is None:
            raise RunError(f"selection metric '{metric}' was not computed in epoch {epoch + 1}: split "
                           f"'{self.config.val_split}' has no clip labelled for it (computed: {', '.join(record['val'])})")
        best = self.best["value"]
        better = best is None or (value > best if self.config.select_mode == "max" else value < best)
        if better:
            self.best.update(value=float(value), epoch=epoch + 1)  # 1-based, as printed
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.config.early_stopping is not None and self.bad_epochs >= self.config.early_stopping:
                self.stopped = True
        record["selected"] = better
        return better

    # checkpoints --------------------------------------------------------------------------------------------------

    def checkpoint(self, epoch: int) -> Checkpoint:
        """Everything a resume needs after ``epoch`` (``last.pt``)."""
        training = TrainingState(
            phase=self.phase_index, optimizer=self.optimizer.state_dict(),
            lr_scheduler=self.lr_scheduler.state_dict(), weighting=self.weighting.state_dict(),
            schedule=self.schedule.state_dict(),
            streams={name: reader.state() for name, reader in self.parts.streams.items()},
            rng=rng_state(), augment_rng=self.augment_generator.get_state(), history=self.history,
            bad_epochs=self.bad_epochs, stopped=self.stopped, recipe=resolved_dict(self.recipe))
        return Checkpoint(
            epoch=epoch, step=self.step, model=self.pipeline.state_dict(),
            extra_models={name: m.state_dict() for name, m in self.schedule.extra_models().items()},
            recipe_hash=self.parts.recipe_hash, labels=self.parts.labels.as_dict(), tasks=list(self.parts.tasks),
            best=dict(self.best), training=training)

    def save(self, epoch: int, improved: bool) -> None:
        checkpoint = self.checkpoint(epoch)
        if improved:
            checkpoint.model_only(self.history[-1]["val"]).save(self.run.best)
        checkpoint.save(self.run.last)
        write_json(self.run.history, self.history)

    def restore(self, checkpoint: Checkpoint) -> None:
        state = checkpoint.check_resumable(self.parts.recipe_hash)
        self.pipeline.load_state_dict(checkpoint.model)
        for name, model in self.schedule.extra_models().items():
            model.load_state_dict(checkpoint.extra_models[name])
        self.start_epoch = checkpoint.epoch + 1
        index = self.phase_of(min(self.start_epoch, self.config.epochs - 1))[0]
        if index == state.phase:  # within a phase, optimiser, LR and selection continue
            self.enter_phase(index, resuming=True)
            self.optimizer.load_state_dict(state.optimizer)
            self.lr_scheduler.load_state_dict(state.lr_scheduler)
            self.best, self.bad_epochs, self.stopped = dict(checkpoint.best), state.bad_epochs, state.stopped
        else:  # the next epoch opens a new phase: fit enters it as an uninterrupted run does
            self.phase_index = state.phase
        self.weighting.load_state_dict(state.weighting)
        self.schedule.load_state_dict(state.schedule)
        for name, reader in self.parts.streams.items():
            reader.restore(state.streams[name])
        self.history = list(state.history)
        self.partial = state.partial  # a mid-epoch checkpoint: train_epoch continues that epoch
        self.step = checkpoint.step
        restore_rng_state(state.rng)
        self.augment_generator.set_state(state.augment_rng)


def flatten_record(record: JSONMapping) -> dict[str, float]:
    flat: dict[str, float] = {"epoch": float(record["epoch"]), "lr": float(record["lr"])}
    for task, value in record.get("train_losses", {}).items():
        flat[f"train/loss/{task}"] = float(value)
    for name, value in record.get("extra_losses", {}).items():
        flat[f"train/extra/{name}"] = float(value)
    for task, value in record.get("weights", {}).items():
        flat[f"weight/{task}"] = float(value)
    flat.update({k: float(v) for k, v in record.get("val", {}).items()})
    return flat


def runtime_line(trainer: Trainer) -> str:
    """The console line that says how the run computes: device, precision (``auto`` decided) and compile."""
    config = trainer.config
    precision = trainer.runtime.precision + (" (auto)" if config.precision == "auto" else "")
    layout = ", channels_last" if config.channels_last else ""
    return f"device {trainer.runtime.device}, precision {precision}{layout}, compile {trainer.compiled}"


def epoch_line(epoch: int, epochs: int, record: JSONMapping) -> str:
    losses = " ".join(f"{t}={v:.4f}" for t, v in {**record["train_losses"], **record["extra_losses"]}.items())
    val = " ".join(f"{k.removeprefix('val/')}={v:.4f}" for k, v in record["val"].items() if "loss" not in k)
    return f"epoch {epoch + 1}/{epochs}: loss {losses} | {val} | {record['time']:.1f}s"
