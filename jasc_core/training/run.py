"""``jasc run``: a recipe -> built parts -> a trained, evaluated run folder (new, or resumed).

The order: check what needs no data (a computable selection metric, a usable device); create the run folder; build
the dataset, streams, pipeline, weighting and schedule (``build_parts``); train (``Trainer``); tune thresholds and
evaluate when the recipe says so; call the ``jasc_run_end`` hook.

Under torchrun (``jasc run --nproc``) every process runs this; the runtime (``make_runtime``) makes only the main
process create and write the run folder (the others get its path), evaluate, and call the run hooks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path

from jasc_core import __version__
from jasc_core.contract.components import Dataset, FeatureExtractor
from jasc_core.contract.data import ClipList
from jasc_core.contract.json_types import JSONMapping, JSONObject
from jasc_core.contract.registry import get_registry
from jasc_core.contract.tasks import TASK_DESCRIPTIONS, TASKS
from jasc_core.data.audio_cache import default_audio_cache_dir
from jasc_core.data.cache_fill import build_audio_cache
from jasc_core.data.clips import ClipDataset, clip_dataset
from jasc_core.data.loaders import split_loaders, worker_count
from jasc_core.errors import ConfigError, JascError, RunError, os_error_message
from jasc_core.evaluation import evaluate_run, tune_thresholds
from jasc_core.evaluation.validation import selectable_metrics
from jasc_core.inference.scoring import load_split
from jasc_core.model.device import resolve_device
from jasc_core.model.pipeline import Labels, build_pipeline
from jasc_core.recipes.blocks import TrainConfig
from jasc_core.recipes.model import build, dump_yaml, identity_dict
from jasc_core.recipes.types import Recipe
from jasc_core.runs.folder import RunFolder, create_run, default_run_name, new_run_dir, recipe_hash
from jasc_core.runs.liveness import heartbeat_if
from jasc_core.runs.rng import seed_everything
from jasc_core.training.compile import compile_settings
from jasc_core.training.distill import Distiller
from jasc_core.training.distributed import make_runtime, under_torchrun
from jasc_core.training.hooks import RunHooks
from jasc_core.training.init import apply_init
from jasc_core.training.loop import Trainer, TrainingParts
from jasc_core.training.progress import show_progress
from jasc_core.training.resume import open_for_resume
from jasc_core.training.runtime import Runtime, deterministic_mode, is_main_process
from jasc_core.training.signals import DUPLICATE_WINDOW_S, Stopped, StopSignals, signal_name
from jasc_core.training.step_counts import steps_trained
from jasc_core.training.streams import build_streams


def model_tasks(recipe: Recipe) -> tuple[str, ...]:
    """Tasks the recipe's model has a head for, in ``TASKS`` order (the recipe loader checked there is one)."""
    heads = recipe.model.heads
    return tuple(task for task in TASKS if getattr(heads, task, None) is not None)


def check_before_training(recipe: Recipe) -> tuple[str, ...]:
    """Checks that need no data: a computable selection metric, a usable device. Returns the model's tasks."""
    tasks = model_tasks(recipe)
    names = selectable_metrics(tasks)
    if recipe.train.select_metric not in names:
        raise ConfigError(
            f"train.select_metric: '{recipe.train.select_metric}' is not computed for this model; "
            f"choose one of {', '.join(names)}"
        )
    resolve_device(recipe.train.device)
    return tasks


def labels_for(train: ClipList, tasks: tuple[str, ...], data_name: str, split: str) -> Labels:
    """Label vocabularies from the training split; every task with a head must have labels there."""
    present = {task for clip in train for task in tasks if TASK_DESCRIPTIONS[task].label_kind(clip) is not None}
    labels = Labels()
    for task in tasks:
        if task not in present:
            raise ConfigError(
                f"model.heads.{task}: data '{data_name}' has no {task} labels in split '{split}'; "
                f"remove the head or use data with {task} annotations"
            )
        labels[task] = TASK_DESCRIPTIONS[task].vocabulary(train)
        if not labels[task]:
            raise ConfigError(f"data '{data_name}': the {task} label list of split '{split}' is empty")
    return labels


def runtime_for(recipe: Recipe) -> Runtime:
    """The recipe's runtime: distributed under torchrun, else one process."""
    config = recipe.train
    return make_runtime(config.device, config.precision, config.sync_batchnorm)


def build_parts(recipe: Recipe, *, init_weights: bool = True, runtime: Runtime | None = None,
                run: RunFolder | None = None) -> TrainingParts:
    """Everything the loop needs, built from a recipe (data prepared, normalisation fitted on the training split).

    ``init_weights``: apply ``model.init``; a resume that restores a checkpoint skips it (the checkpoint replaces those
    weights anyway, and the source run need not exist any more). ``runtime``: default ``runtime_for(recipe)``.
    ``run``: the run folder trained into (its record says which recipe blocks its checkpoints' hash covers).
    """
    config, data_name = recipe.train, recipe.data.name
    tasks = check_before_training(recipe)
    runtime = runtime or runtime_for(recipe)
    seed_everything(recipe.seed)
    dataset = build("dataset", recipe.data)
    dataset.prepare()
    train_clips, val_clips = device_clips(load_split(dataset, config.train_split, data_name),
                                          load_split(dataset, config.val_split, data_name), config.devices, data_name)
    labels = labels_for(train_clips, tasks, data_name, config.train_split)
    pipeline = build_pipeline(recipe, labels, tasks)
    # Weights of another run (fine-tuning) before the pipeline moves; a resume's checkpoint replaces them later.
    init = apply_init(recipe.model.init, pipeline, labels) if init_weights and recipe.model.init is not None else None
    pipeline = pipeline.to(runtime.device)
    weighting = build("weighting", recipe.weighting)
    schedule = build("schedule", recipe.schedule)
    features = pipeline.features
    workers = worker_count(config.num_workers)
    train_data, val_data = split_datasets(config, dataset, features, labels, train_clips, val_clips)
    streams = build_streams(train_data, tasks, batch_size=config.batch_size, batch_sizes=config.stream_batch_sizes,
                            seed=recipe.seed, num_workers=workers, pin_memory=runtime.pin_memory,
                            world_size=runtime.world_size, shard=runtime.shard, keep=config.streams)
    val_loaders = runtime.shard_loaders(split_loaders(val_data, config.batch_size, workers, runtime.pin_memory,
                                                      persistent=True))
    # Normalisation statistics from the training split: buffers of the features module, saved with the model.
    features.fit_normalization(
        batch.waveform.to(runtime.device)
        for loader in split_loaders(train_data, config.batch_size, workers) for batch in loader
    )
    for param in weighting.parameters():
        # The scheme may have created its parameters on the CPU; move the data, keeping the same leaf tensor.
        param.data = param.data.to(runtime.device)
    augmentations = [build("augment", block).to(runtime.device) for block in recipe.augment]
    distiller = (Distiller(recipe.distill, labels, tasks, int(features.sample_rate), runtime, augmentations)
                 if recipe.distill is not None else None)
    return TrainingParts(recipe, runtime, pipeline, weighting, schedule, streams, val_loaders, labels, tasks,
                         (run.recipe_hash if run is not None else recipe_hash)(identity_dict(recipe)),
                         stand_in=pipeline.stand_in(dataset.stand_in), init=init, augmentations=augmentations,
                         distiller=distiller)


def device_clips(train: ClipList, val: ClipList, devices: list[str] | None,
                 data_name: str) -> tuple[ClipList, ClipList]:
    """``train.devices``: the training clips of those devices, and the validation clips of them where there are any
    (the vocabularies stay the split's, so a device-specific model keeps the general model's labels); None: all."""
    if devices is None:
        return train, val
    wanted = set(devices)
    kept = [clip for clip in train if clip.device in wanted]
    if not kept:
        found = sorted({str(clip.device) for clip in train})
        raise ConfigError(f"train.devices: no training clip of data '{data_name}' was recorded by {', '.join(devices)}"
                          f" (devices there: {', '.join(found)})")
    val_kept = [clip for clip in val if clip.device in wanted]
    return (dataclasses.replace(train, clips=kept),
            dataclasses.replace(val, clips=val_kept) if val_kept else val)


def split_datasets(config: TrainConfig, dataset: Dataset, features: FeatureExtractor, labels: Labels,
                   train_clips: ClipList, val_clips: ClipList) -> tuple[ClipDataset, ClipDataset]:
    """Training and validation ``ClipDataset``s with the recipe's caches: the memory budget shared in proportion to
    each split's audio, and the disk cache filled before training (a progress bar on a terminal)."""
    seconds = [sum(clip.duration for clip in clips) for clips in (train_clips, val_clips)]
    budget = config.cache_memory_mb * 2**20
    disk = (config.disk_cache_dir or default_audio_cache_dir()) if config.disk_cache else None
    made = [clip_dataset(clips, dataset, features, labels, config.cache_audio,
                         int(budget * share / max(1e-9, sum(seconds))), disk)
            for clips, share in zip((train_clips, val_clips), seconds, strict=True)]
    if disk is not None:
        build_audio_cache(made, worker_count(config.num_workers), show_progress())
    return made[0], made[1]


def _new_run(recipe: Recipe, recipe_path: str | Path | None, out_dir: str | Path | None) -> RunFolder:
    if out_dir is not None:
        root = Path(out_dir)
        if root.exists() and any(root.iterdir()):
            raise RunError(f"{root} exists and is not empty; choose a new --out or --resume {root}")
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = new_run_dir(recipe.output.dir, recipe.output.name or default_run_name(recipe_path))
    return create_run(root, recipe_yaml=dump_yaml(recipe), identity=identity_dict(recipe), version=__version__)


def run_recipe(
    recipe: Recipe | None, *, recipe_path: str | Path | None, out_dir: str | Path | None = None,
    resume: str | Path | None = None, evaluate: bool = True, handle_signals: bool = True,
) -> Path:
    """Train a recipe into a run folder (new, or ``resume``d), then evaluate it; returns the run folder.

    ``handle_signals``: SIGINT, SIGTERM, SIGHUP and SIGUSR1 stop the run at a step boundary with a checkpoint and
    raise ``Stopped`` (a ``KeyboardInterrupt`` naming the signal and the run folder; ``jasc_core.training.signals``);
    the previous handlers are restored when the run ends. False leaves the process's handlers alone.
    """
    signals = StopSignals(DUPLICATE_WINDOW_S if under_torchrun() else 0.0)
    with signals if handle_signals else contextlib.nullcontext():
        return _run(recipe, recipe_path, out_dir, resume, evaluate, signals)


def _run(recipe: Recipe | None, recipe_path: str | Path | None, out_dir: str | Path | None,
         resume: str | Path | None, evaluate: bool, signals: StopSignals) -> Path:
    if resume is not None:
        run, recipe = open_for_resume(resume, recipe, check_alive=is_main_process())
        runtime = runtime_for(recipe)
        runtime.main_only(lambda: run.update_meta(status="running", error=None, signal=None))
    else:
        if recipe is None:
            raise RunError("run_recipe needs a recipe (or resume=RUN_DIR)")
        check_before_training(recipe)  # fail before a run folder exists
        runtime = runtime_for(recipe)
        run = RunFolder(runtime.from_main(lambda: _new_run(recipe, recipe_path, out_dir).root))
    hook = RunHooks(get_registry().hook)
    with deterministic_mode(recipe.train.deterministic), compile_settings(recipe.train.compile):
        try:
            # The heartbeat stops before a failure below may remove the run folder.
            with heartbeat_if(runtime.is_main, run.update_meta):
                metrics = _train(recipe, run, runtime, hook, signals, resume, evaluate)
        except KeyboardInterrupt as exc:  # Ctrl-C, or a stopping signal (Stopped)
            name = signal_name(getattr(exc, "signum", signal.SIGINT))
            with contextlib.suppress(OSError):
                if runtime.is_main:
                    run.update_meta(status="interrupted", signal=name)
            exc.run_dir = run.root  # the CLI says how to resume it
            raise
        except (JascError, OSError) as exc:
            _record_failure(exc, run, runtime, resume)
            if isinstance(exc, OSError):  # a folder that cannot be written, a full disk: path and reason, one line
                raise RunError(os_error_message(exc)) from None
            raise
        finally:
            runtime.close()  # leave the process group whatever ended the run
    if runtime.is_main:
        run.update_meta(status="finished")
        hook.jasc_run_end(run_dir=str(run.root), metrics=flat_metrics(metrics))
        if hook.failed:  # the warnings scrolled by; the run folder keeps which plugin stopped and why
            run.update_meta(hook_failures=hook.failed)
    return run.root


def _train(recipe: Recipe, run: RunFolder, runtime: Runtime, hook: RunHooks, signals: StopSignals,
           resume: str | Path | None, evaluate: bool) -> JSONObject:
    """Build, train (signals deferred to step boundaries) and evaluate; the evaluation's metrics."""
    main = runtime.main_only
    parts = build_parts(recipe, init_weights=resume is None or not run.last.is_file(), runtime=runtime, run=run)
    if parts.stand_in:
        main(lambda: run.update_meta(data_stand_in=parts.stand_in))
    if parts.init is not None:
        main(lambda: run.update_meta(init=parts.init))
    trainer = Trainer(parts, run)
    trainer.stop = signals
    main(lambda: run.update_meta(precision=parts.runtime.precision, compile=trainer.compiled))
    with signals.deferred():
        trainer.fit(hook, resume=resume is not None)
        # A signal that came after the last step boundary (validation of the last epoch): stop here, together.
        signum = runtime.max_over_processes([signals.signum or 0])[0]
    if signum:
        raise Stopped(signum)
    main(lambda: run.update_meta(status="trained", epochs_trained=len(trainer.history), best=trainer.best,
                                 steps=steps_trained(trainer.history)))
    return (main(lambda: _evaluate(run, recipe)) or {}) if evaluate else {}


def _record_failure(exc: JascError | OSError, run: RunFolder, runtime: Runtime, resume: str | Path | None) -> None:
    """The run folder's record of a failure (the main process's; no barrier on a failure path)."""
    if not runtime.is_main:
        return
    if resume is None and not run.last.is_file():
        # Stopped before its first checkpoint (data missing, sizes mismatch, an early NaN): a new run folder holds
        # nothing to resume, and leaving it would make the same command fail on a non-empty --out.
        shutil.rmtree(run.root, ignore_errors=True)
    elif run.read_meta().get("status") != "failed":
        run.mark_failed(os_error_message(exc) if isinstance(exc, OSError) else str(exc))


def _evaluate(run: RunFolder, recipe: Recipe) -> JSONObject:
    if recipe.evaluate.tune_thresholds is not None:
        tune_thresholds(run.root, recipe.evaluate.tune_thresholds, split=recipe.train.val_split,
                        recipe=recipe, level=recipe.evaluate.tune_level)
    return evaluate_run(run.root, split=recipe.evaluate.split, recipe=recipe)


def flat_metrics(metrics: JSONMapping, prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(flat_metrics(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = float(value)
    return flat
