"""SEBB post-processing (optional ``sebbs``) and PSDS on raw, median-filtered and SEBB scores.

The tests that run sebbs skip without it (it is the optional extra ``jasc[sebb]``, not in dev: see pyproject.toml);
the others (parameter files, the missing-package error, raw vs median PSDS) always run.
"""

from __future__ import annotations

import json
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from jasc_core.contract.data import Clip, Event
from jasc_core.errors import ConfigError, RunError
from jasc_core.evaluation.postprocess_metrics import psds_by_postprocess
from jasc_core.evaluation.sed_scores import import_sed_scores_eval
from jasc_core.inference import sebb
from jasc_core.inference.scoring import SplitScores
from jasc_core.recipes.blocks import PostprocessConfig
from jasc_core.runs import sebb_params
from jasc_core.runs.sebb_params import SebbParams

HOP = 0.1
LABELS = ["long", "blip"]


def _has_sebbs() -> bool:
    try:
        sebb.import_csebbs()
    except ConfigError:
        return False
    return True


needs_sebbs = pytest.mark.skipif(not _has_sebbs(), reason="sebbs (optional extra jasc[sebb]) is not installed")


def _run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"recipe_hash": "x"}))
    (run / "recipe.yaml").write_text("{}\n")
    return run


def _clips(n: int = 4):
    """``n`` clips of 10 s: a 6-s 'long' event detected with a flicker every third frame, and a 0.3-s 'blip'
    detected exactly; plus a weaker false 'long' bump in each clip."""
    clips, probs = [], {}
    for i in range(n):
        frames = np.full((100, 2), 0.05)
        frames[20:80, 0] = 0.9
        frames[20:80:3, 0] = 0.2
        frames[88:92, 0] = 0.4 + 0.1 * i  # a false alarm, confidence growing with i
        frames[5 + i:8 + i, 1] = 0.8
        clip = Clip(f"c{i}", "mem", 0.0, 10.0, events=(Event(2.0, 8.0, "long"),
                                                        Event((5 + i) * HOP, (8 + i) * HOP, "blip")))
        clips.append(clip)
        probs[clip.clip_id] = frames
    return clips, probs


def _truth(clips):
    return {c.clip_id: [(e.onset, e.offset, e.label) for e in c.events] for c in clips}


def test_parameters_round_trip_through_the_run_folder_with_unrestricted_merges(tmp_path):
    run = _run(tmp_path)
    assert sebb_params.stored_sebb(run, LABELS) is None
    psds = SebbParams({"long": 0.32, "blip": 0.48}, {"long": 0.2, "blip": math.inf}, {"long": math.inf, "blip": 1.5})
    cbf = SebbParams(psds.step_filter_length, psds.merge_threshold_abs, psds.merge_threshold_rel,
                     {"long": 0.5, "blip": 0.25})
    sebb_params.save_sebb(run, {"psds": psds, "cbf": cbf}, split="val")
    text = (run / "sebb.json").read_text()
    assert "Infinity" not in text  # strict JSON: an unrestricted merge threshold is null
    assert sebb_params.stored_sebb(run, LABELS) == {"psds": psds, "cbf": cbf}
    with pytest.raises(RunError, match="tuned for labels"):
        sebb_params.stored_sebb(run, ["long", "other"])
    with pytest.raises(ValueError, match="missing"):
        sebb_params.save_sebb(run, {"psds": psds})


def test_without_sebbs_the_error_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sebbs", None)
    with pytest.raises(ConfigError) as info:
        sebb.import_csebbs()
    message = str(info.value)
    assert "\n" not in message and "jasc[sebb]" in message and "sebbs" in message


def test_psds_of_raw_and_median_scores_equal_direct_sed_scores_eval_calls():
    from scipy.ndimage import median_filter
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    sse = import_sed_scores_eval()
    clips, probs = _clips()
    truth, durations = _truth(clips), {c.clip_id: 10.0 for c in clips}
    post = PostprocessConfig(median_filter={"long": 0.5})  # 5 frames for 'long', none for 'blip'
    values = psds_by_postprocess(probs, truth, LABELS, HOP, durations, post)
    stamps = np.arange(101) * HOP

    def direct(scores, settings):
        frames = {c: create_score_dataframe(s, stamps, LABELS) for c, s in scores.items()}
        return sse.intersection_based.psds(frames, truth, durations, unit_of_time="hour", **settings)[0]

    from jasc_core.evaluation.dcase import PSDS_SETTINGS

    smoothed = {c: np.stack([median_filter(s[:, 0], size=5, mode="nearest"), s[:, 1]], axis=1)
                for c, s in probs.items()}
    for name, settings in PSDS_SETTINGS.items():
        assert values[f"{name}_raw"] == pytest.approx(direct(probs, settings), abs=1e-12)
        assert values[f"{name}_median"] == pytest.approx(direct(smoothed, settings), abs=1e-12)
    # The flicker splits 'long' into 20 detections under PSDS1's 0.7 tolerance; the filter joins them.
    assert values["psds1_median"] > values["psds1_raw"] + 0.05
    assert "psds1_sebb" not in values
    no_filter = psds_by_postprocess(probs, truth, LABELS, HOP, durations, PostprocessConfig(median_filter=0.0))
    assert "psds1_median" not in no_filter and no_filter["psds1_raw"] == values["psds1_raw"]


@needs_sebbs
def test_sebb_events_merge_a_flickering_event_into_one_box_and_the_threshold_keeps_its_bounds():
    clips, probs = _clips(1)
    # Relative merging at 5: the flicker's dips (0.9 / 0.2) merge, the false bump (0.4 / 0.05) and the blip stay apart.
    params = SebbParams({c: 0.32 for c in LABELS}, {c: math.inf for c in LABELS}, {c: 5.0 for c in LABELS},
                        {"long": 0.3, "blip": 0.3})
    events = sebb.sebb_events(probs["c0"], LABELS, HOP, params)
    long = [e for e in events if e.label == "long"]
    assert len(long) == 2  # the flickering 6-s event as one box, plus the false bump
    assert long[0].onset == pytest.approx(2.0, abs=0.11) and long[0].offset == pytest.approx(8.0, abs=0.11)
    assert [(e.onset, e.offset) for e in events if e.label == "blip"] == [(0.5, 0.8)]
    strict = SebbParams(params.step_filter_length, params.merge_threshold_abs, params.merge_threshold_rel,
                        {"long": 0.5, "blip": 0.3})
    kept = [e for e in sebb.sebb_events(probs["c0"], LABELS, HOP, strict) if e.label == "long"]
    assert kept == long[:1]  # a higher threshold drops the weak box, the strong one keeps its onset and offset
    with pytest.raises(ConfigError, match="detection thresholds"):
        sebb.sebb_events(probs["c0"], LABELS, HOP, SebbParams({}, {}, {}))


@needs_sebbs
def test_psds_of_sebb_scores_equals_sebbs_predict_scored_by_sed_scores_eval():
    from sebbs import csebbs
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    sse = import_sed_scores_eval()
    clips, probs = _clips()
    truth, durations = _truth(clips), {c.clip_id: 10.0 for c in clips}
    params = SebbParams({c: 0.32 for c in LABELS}, {c: math.inf for c in LABELS}, {c: 5.0 for c in LABELS})
    values = psds_by_postprocess(probs, truth, LABELS, HOP, durations, PostprocessConfig(median_filter=0.0),
                                 {"psds": params, "cbf": params})
    frames = {c: create_score_dataframe(s, np.arange(101) * HOP, LABELS) for c, s in probs.items()}
    predictor = csebbs.CSEBBsPredictor(step_filter_length=0.32, merge_threshold_abs=math.inf,
                                       merge_threshold_rel=5.0, sound_classes=LABELS)
    boxes = predictor.predict(frames)
    from sebbs.utils import sed_scores_from_sebbs

    box_frames = sed_scores_from_sebbs(boxes, LABELS, durations)
    from jasc_core.evaluation.dcase import PSDS_SETTINGS

    expected = sse.intersection_based.psds(box_frames, truth, durations, unit_of_time="hour",
                                           **PSDS_SETTINGS["psds1"])[0]
    assert values["psds1_sebb"] == pytest.approx(expected, abs=1e-12)
    assert values["psds1_sebb"] > values["psds1_raw"] + 0.05  # the boxes join the flicker


@needs_sebbs
def test_tuning_stores_both_sets_and_untuned_classes_keep_the_defaults(monkeypatch, tmp_path):
    from jasc_core.evaluation import sebb_tuning

    clips, probs = _clips()
    labels = LABELS + ["silent"]
    stacked = np.stack([np.concatenate([probs[c.clip_id], np.full((100, 1), 0.05)], axis=1) for c in clips])
    scores = SplitScores(clip_ids=[c.clip_id for c in clips], hop_seconds=HOP, durations=[10.0] * len(clips),
                         probs={"event": stacked}, targets={"event": np.zeros_like(stacked)},
                         labelled={"event": np.ones(len(clips), bool)})
    recipe = SimpleNamespace(evaluate=SimpleNamespace(threshold=0.5, postprocess=PostprocessConfig()))
    run = _run(tmp_path)
    monkeypatch.setattr(sebb_tuning, "score_split", lambda run_dir, split: (scores, (recipe, None,
                                                                                     {"event": labels}, clips)))
    params = sebb_tuning.tune_sebb(run, "val", step_filter_lengths=(0.32, 0.64), merge_thresholds_abs=(0.3,),
                                   merge_thresholds_rel=(2.0,))
    assert sebb_params.stored_sebb(run, labels) == params
    assert params["psds"].detection_threshold is None
    assert set(params["cbf"].detection_threshold) == set(labels)
    assert params["cbf"].detection_threshold["silent"] == 0.5  # no reference events: the run's threshold
    assert params["psds"].step_filter_length["silent"] == sebb_tuning.DEFAULTS["step_filter_length"]
    for name in ("psds", "cbf"):
        assert params[name].step_filter_length["long"] in (0.32, 0.64)
    stored = json.loads((run / "sebb.json").read_text())
    assert stored["split"] == "val" and set(stored["validation"]) == {"psds", "cbf"}


@needs_sebbs
def test_collar_f1_of_detections_counts_a_class_never_detected_as_zero():
    from jasc_core.evaluation.postprocess_metrics import sebb_collar_f1

    truth = {"a": [(1.0, 3.0, "long"), (5.0, 5.5, "blip")], "b": [(2.0, 4.0, "long")]}
    events = {"a": [Event(1.1, 2.9, "long"), Event(6.0, 7.0, "other")], "b": [Event(8.0, 9.0, "long")]}
    f1 = sebb_collar_f1(events, truth, LABELS, {"a": 10.0, "b": 10.0})
    assert f1["per_class"] == {"long": pytest.approx(0.5), "blip": 0.0}  # 1 hit, 1 false alarm, 1 miss; no blip
    assert f1["counts"] == {"tp": 1, "fp": 2, "n_ref": 3}  # the 'other' detection is a false alarm too


def test_sed_scores_eval_files_replaced_by_the_sebbs_fork_stop_the_metrics(monkeypatch, tmp_path):
    import base64
    import hashlib
    from importlib import metadata

    from jasc_core.evaluation import sed_scores

    installed = tmp_path / "curves.py"
    installed.write_text("the fork's code")

    class Entry:  # one row of sed_scores_eval 0.0.4's install record
        hash = SimpleNamespace(value="0.0.4-hash")

        def __str__(self) -> str:
            return sed_scores._SENTINEL

        def locate(self):
            return installed

    dists = {"sed_scores_eval": SimpleNamespace(files=[Entry()]), "sed_scores_eval_np2": SimpleNamespace(files=[])}

    def distribution(name):
        if name not in dists:
            raise metadata.PackageNotFoundError(name)
        return dists[name]

    monkeypatch.setattr(metadata, "distribution", distribution)
    assert sed_scores.files_replaced_by_fork()
    monkeypatch.setattr(sed_scores, "_patched", False)
    with pytest.raises(ConfigError, match="force-reinstall --no-deps sed_scores_eval==0.0.4"):
        sed_scores.import_sed_scores_eval()
    digest = base64.urlsafe_b64encode(hashlib.sha256(installed.read_bytes()).digest()).rstrip(b"=").decode()
    Entry.hash = SimpleNamespace(value=digest)
    assert not sed_scores.files_replaced_by_fork()  # the fork installed, but 0.0.4's files on disk
    del dists["sed_scores_eval_np2"]
    Entry.hash = SimpleNamespace(value="other")
    assert not sed_scores.files_replaced_by_fork()  # no fork: nothing to check


def test_the_tables_show_psds_per_post_processing_only_where_there_are_values():
    from jasc_core.evaluation.table import markdown_tables, postprocess_rows

    event = {"psds1_raw": 0.1, "psds2_raw": 0.2, "psds1_median": 0.15, "psds2_median": None,
             "median_filter_source": "median_filters.json", "psds1_sebb": 0.3, "psds2_sebb": 0.4}
    assert postprocess_rows(event) == [["raw scores", "0.100", "0.200"], ["median filter (tuned)", "0.150", "-"],
                                       ["SEBB", "0.300", "0.400"]]
    assert postprocess_rows({"psds1": 0.1}) == []
    text = markdown_tables("run", {"split": "eval", "n_clips": 2, "event": {"collar_f1": {}, **event}})
    assert "| SEBB | 0.300 | 0.400 |" in text
