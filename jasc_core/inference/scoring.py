"""Scoring clips with a trained pipeline: a run's model on a split -> probabilities and targets per task."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jasc_core.contract.batch import Batch
from jasc_core.contract.components import Dataset
from jasc_core.contract.data import ClipList
from jasc_core.contract.tasks import TASK_DESCRIPTIONS, clips_in_loss, labelled_subset
from jasc_core.contract.weighting import Weighting
from jasc_core.data.clips import clip_dataset
from jasc_core.data.loaders import split_loaders, worker_count
from jasc_core.errors import DataError, RunError
from jasc_core.model.device import autocast_for, resolve_device, resolve_precision
from jasc_core.model.pipeline import Labels, Pipeline, build_pipeline
from jasc_core.recipes.model import build, load_recipe
from jasc_core.recipes.types import Recipe
from jasc_core.runs.checkpoints import load_checkpoint
from jasc_core.runs.folder import open_run


@dataclass
class SplitScores:
    """Probabilities and targets of a split by task, clip-aligned (``clip_ids[i]`` is row ``i`` of every array).

    ``probs[task]``: ``[N, classes]`` or, for a frame-level task, ``[N, T, classes]`` (clips shorter than the longest
    are padded with zero frames; ``durations`` says where each clip ends). ``targets[task]``: class indices ``[N]``
    (-1 unlabelled) or frame targets; ``labelled[task]``: ``[N]`` bool, the clips with that task's main label.
    """

    clip_ids: list[str]
    hop_seconds: float
    durations: list[float]
    probs: dict[str, np.ndarray] = field(default_factory=dict)
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    labelled: dict[str, np.ndarray] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)
    #: Clips each mean of ``losses`` is taken over (so scores of several processes join into exact means).
    loss_counts: dict[str, int] = field(default_factory=dict)
    #: The dataset's stand-in phrase when it served substitute data (``Dataset.stand_in``), else None.
    stand_in: str | None = None


def join_rows(arrays: list[np.ndarray]) -> np.ndarray:
    """Arrays of clips joined along the clip axis; frame-level ``[n, T, classes]`` ones padded with zero frames to
    the longest (a split's clips may differ in length, and so may the shares of several processes)."""
    if arrays[0].ndim == 3:
        frames = max(a.shape[1] for a in arrays)
        arrays = [np.pad(a, ((0, 0), (0, frames - a.shape[1]), (0, 0))) for a in arrays]
    return np.concatenate(arrays)


def _task_rows(task: str, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, np.ndarray]:
    """One batch's probabilities, targets and labelled mask of ``task`` as ``SplitScores`` holds them (scene targets
    -1 where unlabelled; frame targets cut to the frames the model gave)."""
    description, n = TASK_DESCRIPTIONS[task], len(batch)
    probs = description.probabilities(outputs[task]).cpu().numpy()
    mask = batch.masks.get(task, torch.zeros(n, dtype=torch.bool)).cpu().numpy()
    if task in batch.targets:
        target = batch.targets[task].cpu().numpy()
        if description.frame_level:
            frames = min(probs.shape[1], target.shape[1])
            probs, target = probs[:, :frames], target[:, :frames]
    # Class indices mark an unlabelled clip -1; multi-hot and frame targets rely on "labelled".
    indices = description.outputs().kind == "class"
    if task not in batch.targets:
        target = np.zeros(n, dtype=np.int64) if indices else np.zeros_like(probs)
    if indices:
        target = np.where(mask, target, -1)
    return {"probs": probs, "targets": target, "labelled": mask}


def collect_scores(
    pipeline: torch.nn.Module, loaders: Iterable[Iterable[Batch]], device: torch.device, tasks: Sequence[str], *,
    precision: str = "fp32", weighting: Weighting | None = None,
) -> SplitScores:
    """Run ``pipeline`` over the loaders of a split; with ``weighting``, also the mean unweighted loss per task.

    ``precision`` ``bf16`` runs the model under autocast; probabilities and losses are computed in fp32.
    """
    pipeline.eval()
    if weighting is not None:
        weighting.eval()
    clip_ids: list[str] = []
    durations: list[float] = []
    parts: dict[str, dict[str, list[np.ndarray]]] = {task: {"probs": [], "targets": [], "labelled": []} for task in tasks}
    loss_sums: dict[str, float] = {}
    loss_counts: dict[str, int] = {}
    hop = 0.0
    with torch.no_grad():
        for loader in loaders:
            data = loader.dataset.dataset  # a Subset of the split's ClipDataset
            hop = data.hop_seconds
            for batch in loader:
                batch = batch.to(device)
                with autocast_for(device, precision):
                    outputs = pipeline(batch.waveform)
                outputs = {name: output.float() for name, output in outputs.items()}
                clip_ids += batch.clip_ids
                durations += [data.clips[int(i)].duration for i in batch.index]
                for task in tasks:
                    for key, array in _task_rows(task, outputs, batch).items():
                        parts[task][key].append(array)
                if weighting is not None:
                    outs, targets = labelled_subset(outputs, batch, tasks)
                    for task, loss in weighting.task_losses(outs, targets).items():
                        count = clips_in_loss(task, targets)
                        loss_sums[task] = loss_sums.get(task, 0.0) + float(loss) * count
                        loss_counts[task] = loss_counts.get(task, 0) + count
    scores = SplitScores(clip_ids=clip_ids, hop_seconds=hop, durations=durations)
    for task, arrays in parts.items():
        if not arrays["probs"]:
            continue
        scores.probs[task] = join_rows(arrays["probs"])
        scores.targets[task] = join_rows(arrays["targets"])
        scores.labelled[task] = np.concatenate(arrays["labelled"])
    scores.losses = {task: loss_sums[task] / loss_counts[task] for task in loss_sums}
    scores.loss_counts = dict(loss_counts)
    return scores


def load_split(dataset: Dataset, split: str, data_name: str) -> ClipList:
    """A split of the dataset, checked to exist and be non-empty."""
    splits = list(dataset.splits())
    if split not in splits:
        raise DataError(f"data '{data_name}' has no split '{split}'; splits: {', '.join(splits) or '(none)'}")
    clips = dataset.load(split)
    if len(clips) == 0:
        raise DataError(f"data '{data_name}': split '{split}' is empty (0 clips)")
    return clips


def load_trained(
    run_dir: str | Path, *, recipe: Recipe | None = None, device: str | None = None, model: str = "student"
) -> tuple[Recipe, Pipeline, Labels]:
    """A run's recipe, its best model (``last.pt`` if no best was written) on ``device``, and its labels.

    ``model`` names the model to load: ``student`` (the trained network) or an extra model a schedule kept (an EMA
    ``teacher``).
    """
    run = open_run(run_dir)
    if recipe is None:
        recipe = load_recipe(run.recipe)
    path = run.best if run.best.is_file() else run.last
    if not path.is_file():
        raise RunError(f"{run.root} has no checkpoint yet (checkpoints/best.pt); train it with `jasc run --resume`")
    checkpoint = load_checkpoint(path)
    labels = Labels(checkpoint.labels)
    tasks = list(checkpoint.tasks)
    pipeline = build_pipeline(recipe, labels, tasks)
    pipeline.load_state_dict(checkpoint.model)
    if model != "student":
        # An extra model (an EMA teacher) is a copy of the student's joint model; it shares the feature extractor.
        extra = checkpoint.extra_models
        if model not in extra:
            raise RunError(f"{path} holds no model '{model}'; models: {', '.join(['student', *extra])}")
        pipeline.model.load_state_dict(extra[model])
    pipeline.to(resolve_device(device or recipe.train.device)).eval()
    return recipe, pipeline, labels


def score_split(
    run_dir: str | Path, split: str, *, recipe: Recipe | None = None, device: str | None = None, model: str = "student"
) -> tuple[SplitScores, tuple[Recipe, Pipeline, Labels, ClipList]]:
    """``SplitScores`` of a split plus what produced them (recipe, pipeline, labels, clip list)."""
    recipe, pipeline, labels = load_trained(run_dir, recipe=recipe, device=device, model=model)
    dataset = build("dataset", recipe.data)
    dataset.prepare()
    clips = load_split(dataset, split, recipe.data.name)
    data = clip_dataset(clips, dataset, pipeline.features, labels, cache=False)
    loaders = split_loaders(data, recipe.train.batch_size, worker_count(recipe.train.num_workers))
    device_ = next(iter(pipeline.parameters())).device
    precision = resolve_precision(recipe.train.precision, device_)
    scores = collect_scores(pipeline, loaders, device_, pipeline.tasks, precision=precision)
    scores.stand_in = pipeline.stand_in(dataset.stand_in)
    return scores, (recipe, pipeline, labels, clips)


def predict_scores(
    run_dir: str | Path, split: str, *, recipe: Recipe | None = None, device: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str], float]:
    """Probabilities and targets of a split from a run's best model.

    Returns ``(scores, targets, clip_ids, hop_seconds)`` keyed by task: ``scores["scene"] [N, classes]``,
    ``targets["scene"] [N]`` (-1 unlabelled), ``scores["event"]``, ``targets["event"] [N, T, classes]``.
    """
    split_scores, _ = score_split(run_dir, split, recipe=recipe, device=device)
    return dict(split_scores.probs), dict(split_scores.targets), split_scores.clip_ids, split_scores.hop_seconds
