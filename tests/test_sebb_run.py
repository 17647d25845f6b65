"""SEBB on a tiny trained run: ``jasc postprocess tune --method sebb`` -> sebb.json -> ``jasc evaluate`` reports PSDS on
raw, median-filtered and SEBB scores and writes SEBB events; ``jasc predict`` reports SEBB events. Without sebbs the
command is one line on stderr naming the extra, exit 2."""

from __future__ import annotations

import json
import sys

import pytest
from predict_runs import trained_fake_run
from test_predict_cli import BEEPS, long_recording
from test_sebb import needs_sebbs

from jasc_core.inference.predict import Predictor


def test_tune_without_sebbs_is_one_line_naming_the_extra(monkeypatch, tmp_path, cli):
    monkeypatch.setitem(sys.modules, "sebbs", None)
    code, out, err = cli("postprocess", "tune", str(tmp_path), "--method", "sebb")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "jasc[sebb]" in err


@pytest.mark.slow  # 20-40 s: training, tuning, evaluation, prediction; tests/test_sebb.py covers the parts
@needs_sebbs
def test_tuned_sebbs_drive_evaluate_and_predict(tmp_path, cli):
    with trained_fake_run(tmp_path / "run", **{"evaluate.postprocess.median_filter": 0.15}) as run:
        code, out, err = cli("postprocess", "tune", str(run), "--method", "sebb")
        assert code == 0, err
        assert "psds\tbeep" in out and "cbf\tbuzz" in out
        stored = json.loads((run / "sebb.json").read_text())
        assert set(stored["cbf"]["detection_threshold"]) == {"beep", "buzz"}
        code, out, err = cli("evaluate", str(run), "--split", "eval")
        assert code == 0, err
        event = json.loads((run / "metrics.json").read_text())["eval"]["event"]
        for key in ("psds1", "psds2", "psds1_raw", "psds2_raw", "psds1_median", "psds2_median", "psds1_sebb",
                    "psds2_sebb"):
            assert isinstance(event[key], float), (key, event.get(f"{key}_error"))
        assert event["median_filter_source"] == "evaluate.postprocess"
        assert event["psds1"] == event["psds1_median"]  # the decisions' scores: the recipe's median filter
        assert 0.0 <= event["sebb_collar_f1"]["micro"] <= 1.0
        predictor = Predictor.from_run(run)
        assert predictor.sebb is not None
        import soundfile as sf

        wav = tmp_path / "long.wav"
        sf.write(wav, long_recording(30.0, [b for b in BEEPS if b[1] < 30.0]), 44100)
        beeps = [e for e in predictor.predict(wav)["events"] if e["event_label"] == "beep"]
        assert beeps and all(0.0 <= e["onset"] < e["offset"] <= 30.0 for e in beeps)
