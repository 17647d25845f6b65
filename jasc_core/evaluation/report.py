"""``evaluate_run``: a run's best model on a split -> metrics.json, TSV predictions, plots and a Table IV-style table.

Event decisions use the tuned per-class thresholds of ``thresholds.json`` when the run has them (written by
``tune_thresholds`` / ``jasc thresholds tune``), else ``evaluate.threshold`` (001 Table III: 0.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import get_args

import numpy as np
from pydantic import BaseModel

from jasc_core.contract.data import ClipList
from jasc_core.contract.json_types import JSONObject
from jasc_core.contract.tasks import TASK_DESCRIPTIONS, frame_level_task
from jasc_core.errors import ConfigError, RunError
from jasc_core.evaluation.dcase import dcase_event_metrics
from jasc_core.evaluation.devices import per_device_accuracy
from jasc_core.evaluation.events import clip_events, filtered_scores, ground_truth, write_event_tsv, write_scene_tsv
from jasc_core.evaluation.per_dataset import per_dataset_metrics
from jasc_core.evaluation.postprocess_metrics import psds_by_postprocess, sebb_collar_f1, sebb_detections
from jasc_core.evaluation.segments import segment_rows
from jasc_core.evaluation.table import markdown_tables, print_tables
from jasc_core.evaluation.validation import task_metrics
from jasc_core.inference.scoring import SplitScores, score_split
from jasc_core.model.pipeline import Labels
from jasc_core.recipes.blocks import EvaluateConfig, TuneLevel
from jasc_core.recipes.model import block_name_and_config, build
from jasc_core.recipes.types import Recipe
from jasc_core.runs.folder import RunFolder, open_run, read_json, update_json_entry, write_text_atomic
from jasc_core.runs.median_filters import FILE_NAME as MEDIAN_FILE
from jasc_core.runs.median_filters import run_postprocess
from jasc_core.runs.sebb_params import stored_sebb
from jasc_core.runs.thresholds import save_thresholds, stored_thresholds

#: Clips shown in the event-roll plot.
ROLL_CLIPS = 4


def tune_thresholds(
    run_dir: str | Path, block: BaseModel | Mapping[str, object], *, split: str = "val",
    recipe: Recipe | None = None, level: TuneLevel = "frame"
) -> np.ndarray:
    """Fit per-class event thresholds with a ``thresholds`` component on a split; store them in the run.

    ``level`` says what the thresholds decide: ``frame`` (the frame scores; frame-level F1, 001's event metric) or
    ``segment`` (1-s segments, scored by their highest median-filtered frame score: what segment-based F1 counts).
    """
    if level not in get_args(TuneLevel):
        raise ConfigError(f"threshold tuning level {level!r}: expected one of {', '.join(get_args(TuneLevel))}")
    scores, (recipe, _, labels, clips) = score_split(run_dir, split, recipe=recipe)
    task = frame_level_task(scores.probs)
    if task is None or not scores.labelled[task].any():
        raise RunError(f"cannot tune thresholds: the model has no event head or split '{split}' has no event labels")
    classes, labelled = labels[task], scores.labelled[task]
    if level == "segment":
        truth = ground_truth(clips)
        smoothed = {
            clip_id: filtered_scores(probs, classes, scores.hop_seconds, recipe.evaluate.postprocess)
            for clip_id, probs in zip(scores.clip_ids, scores.probs[task], strict=True) if clip_id in truth
        }
        durations = {clip.clip_id: clip.duration for clip in clips}
        probs, targets = segment_rows(smoothed, truth, classes, scores.hop_seconds, durations)
    else:
        probs = scores.probs[task][labelled].reshape(-1, len(classes))
        targets = scores.targets[task][labelled].reshape(-1, len(classes))
    optimizer = build("thresholds", block)
    values = np.asarray(optimizer.fit(probs, targets), dtype=float)
    save_thresholds(run_dir, values, classes, method=block_name_and_config(block, "thresholds")[0], split=split,
                    level=level)
    return values


def _scene_outputs(run: RunFolder, scores: SplitScores, labels: Labels, name: str) -> None:
    """Each clip-level task's predicted labels as a TSV."""
    for task in scores.probs:
        if TASK_DESCRIPTIONS[task].frame_level:
            continue
        predicted = scores.probs[task].argmax(axis=-1)
        write_scene_tsv(
            run.predictions / f"{name}_scenes.tsv",
            {clip_id: labels[task][i] for clip_id, i in zip(scores.clip_ids, predicted, strict=True)},
        )


def _event_outputs(run: RunFolder, scores: SplitScores, classes: list[str], clips: ClipList, threshold: float | np.ndarray,
                   config: EvaluateConfig, name: str, psds: bool) -> JSONObject:
    """The frame-level task's events as DCASE TSV, and its DCASE metrics where the split has reference events.

    With the run's ``sebb.json`` the events are its SEBB detections (as ``jasc predict`` reports them); PSDS is
    reported on the raw, the median-filtered and the SEBB scores (``postprocess_metrics``)."""
    task = frame_level_task(scores.probs)
    by_clip = dict(zip(scores.clip_ids, scores.probs[task], strict=True))
    durations = {clip.clip_id: clip.duration for clip in clips}
    sebb = stored_sebb(run.root, classes)
    if sebb is not None:
        detected = sebb_detections(by_clip, classes, scores.hop_seconds, durations, sebb["cbf"])
        events = {clip_id: [(e.onset, e.offset, e.label) for e in found] for clip_id, found in detected.items()}
    else:
        events = {clip_id: clip_events(probs, classes, scores.hop_seconds, threshold, config.postprocess)
                  for clip_id, probs in by_clip.items()}
    write_event_tsv(run.predictions / f"{name}_events.tsv", events)
    truth = ground_truth(clips)
    if not truth:
        return {}
    # sed_scores_eval thresholds the scores itself: give it the median-filtered ones so that its metrics describe the
    # same detections as the TSV without SEBBs (min_event_length/merge_gap are not applied there).
    smoothed = {clip_id: filtered_scores(probs, classes, scores.hop_seconds, config.postprocess)
                for clip_id, probs in by_clip.items()}
    metrics = dcase_event_metrics(smoothed, truth, classes, scores.hop_seconds, durations, threshold, psds=psds)
    metrics["median_filter_source"] = ("median_filters.json" if (run.root / MEDIAN_FILE).is_file()
                                       else "evaluate.postprocess")
    if psds:
        metrics.update(psds_by_postprocess(by_clip, truth, classes, scores.hop_seconds, durations,
                                           config.postprocess, sebb))
    present = [c for c in classes if c not in metrics.get("classes_without_reference", [])]
    if sebb is not None and present:
        metrics["sebb_collar_f1"] = sebb_collar_f1(detected, truth, present, durations)
    return metrics


def _dataset_metrics(scores: SplitScores, classes: list[str], clips: ClipList, threshold: float | np.ndarray,
                     config: EvaluateConfig, psds: bool) -> JSONObject:
    """Each dataset's event metrics on its own clips and classes where the split joins several (``per_dataset``)."""
    task = frame_level_task(scores.probs)
    return per_dataset_metrics(
        clips, scores.clip_ids, scores.probs[task], scores.targets[task], scores.labelled[task], classes,
        scores.hop_seconds, threshold, lambda probs: filtered_scores(probs, classes, scores.hop_seconds,
                                                                     config.postprocess), psds=psds)


def _plots(run: RunFolder, scores: SplitScores, labels: Labels, metrics: JSONObject, threshold: float | np.ndarray,
           name: str) -> None:
    from jasc_core.evaluation import plots as plot  # matplotlib only when plotting

    history = read_json(run.history) if run.history.is_file() else []
    note = f"data: {scores.stand_in}; not a reproduction" if scores.stand_in else None
    plot.learning_curves(history, run.plots / "learning_curves.png", note)
    plot.weights_plot(history, run.plots / "weights.png", note)
    for task in metrics.keys() & scores.probs.keys():
        if TASK_DESCRIPTIONS[task].frame_level:
            rows = np.flatnonzero(scores.labelled[task])[:ROLL_CLIPS]
            plot.event_roll_plot(
                [scores.clip_ids[i] for i in rows], scores.probs[task][rows], scores.targets[task][rows],
                labels[task], scores.hop_seconds, threshold, run.plots / f"event_roll_{name}.png", note,
            )
        else:
            plot.confusion_plot(metrics[task]["confusion"], labels[task], run.plots / f"confusion_{name}.png", note)


def evaluate_run(
    run_dir: str | Path, split: str = "eval", *, recipe: Recipe | None = None, plots: bool | None = None,
    psds: bool = True, print_table: bool = True, model: str = "student",
) -> JSONObject:
    """Metrics of a run's best checkpoint on ``split``; writes metrics.json, predictions/*.tsv and plots/*.png.

    ``model`` evaluates an extra model a schedule kept (e.g. ``teacher``) instead of the student; its metrics are
    stored under ``<split>_<model>`` in metrics.json (the student's under ``<split>``).
    """
    run = open_run(run_dir)
    scores, (recipe, _, labels, clips) = score_split(run.root, split, recipe=recipe, model=model)
    event_task = frame_level_task(scores.probs)
    # The run's tuned per-class median filters (median_filters.json) replace the recipe's where it has them.
    config = recipe.evaluate.model_copy(update={"postprocess": run_postprocess(
        run.root, labels.get(event_task) if event_task else None, recipe.evaluate.postprocess)})
    tuned = stored_thresholds(run.root, labels[event_task]) if event_task is not None else None
    threshold: float | np.ndarray = tuned if tuned is not None else float(config.threshold)
    name = split if model == "student" else f"{split}_{model}"
    metrics: JSONObject = {"split": split, "model": model, "n_clips": len(scores.clip_ids),
                               "threshold": threshold.tolist() if isinstance(threshold, np.ndarray) else threshold,
                               "thresholds_source": "thresholds.json" if tuned is not None else "evaluate.threshold"}
    if scores.stand_in:
        metrics["data_stand_in"] = scores.stand_in
    metrics.update(task_metrics(scores, labels, threshold))
    for task, rows in per_device_accuracy(scores.clip_ids, scores.probs, scores.targets, scores.labelled,
                                          clips).items():
        metrics[task]["per_device"] = rows
    make_plots = config.plots if plots is None else plots
    if event_task is not None:
        metrics_of_events = _event_outputs(run, scores, labels[event_task], clips, threshold, config, name, psds)
        if event_task in metrics:
            metrics[event_task].update(metrics_of_events)
            datasets = _dataset_metrics(scores, labels[event_task], clips, threshold, config, psds)
            if datasets:
                metrics[event_task]["datasets"] = datasets
    _scene_outputs(run, scores, labels, name)
    if make_plots:
        _plots(run, scores, labels, metrics, threshold, name)

    update_json_entry(run.metrics, name, metrics)
    write_text_atomic(run.root / f"tables_{name}.md", markdown_tables(run.root.name, metrics))
    if print_table:
        print_tables(run.root.name, metrics)
    return metrics
