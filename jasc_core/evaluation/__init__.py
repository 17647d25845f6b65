"""Evaluation of trained runs: paper metrics, DCASE metrics through sed_scores_eval, tables, TSV and plots."""

from __future__ import annotations

from jasc_core.evaluation.report import evaluate_run, tune_thresholds
from jasc_core.runs.thresholds import save_thresholds, stored_thresholds

__all__ = ["evaluate_run", "save_thresholds", "stored_thresholds", "tune_thresholds"]
