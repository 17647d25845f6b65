"""``jasc tune``: the search space, pruning through the run hooks, the study driver (trials, resume, best recipe).

Fast tests prune a tiny in-process run and drive the study with a stand-in for the trial runs; the 8-trial study of
real quickstart runs is marked slow.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from jasc_core.errors import ConfigError

optuna = pytest.importorskip("optuna", reason="optuna is the tune extra: pip install -e '.[tune]'")

from jasc_core.sweeps import launchers  # noqa: E402
from jasc_core.sweeps.plan import RunCommand  # noqa: E402
from jasc_core.sweeps.study import open_study  # noqa: E402
from jasc_core.sweeps.tune import parse_space, run_tune  # noqa: E402

QUICKSTART = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"


def test_parse_space():
    assert parse_space(["train.optimizer.lr=log(1e-4,1e-2)", "weighting.alpha=float(0, 1)",
                        "train.batch_size=int(4,16)", "weighting.name=choice(constant,mfl)"]) == [
        ("train.optimizer.lr", "log", [1e-4, 1e-2]), ("weighting.alpha", "float", [0, 1]),
        ("train.batch_size", "int", [4, 16]), ("weighting.name", "choice", ["constant", "mfl"])]


@pytest.mark.parametrize(("bad", "why"), [
    ("train.optimizer.lr=log(0,1)", "LOW > 0"), ("a.b=log(1e-2,1e-4)", "LOW < HIGH"), ("a.b=int(1.5,3)", "integer"),
    ("a.b=choice(x)", "two values"), ("a.b=uniform(0,1)", "expected PATH="), ("a.b", "expected PATH="),
])
def test_parse_space_rejects(bad, why):
    with pytest.raises(ConfigError, match=f"--space.*{why.replace('(', '.').replace(')', '.')}"):
        parse_space([bad])


def test_unknown_metric_or_path_fails_before_any_trial(tmp_path):
    with pytest.raises(ConfigError, match="--metric val/scene/top5: not a validation metric"):
        run_tune(QUICKSTART, ["train.optimizer.lr=log(1e-4,1e-2)"], trials=2, out=tmp_path / "t",
                 metric="scene/top5")
    with pytest.raises(ConfigError, match="train.optimizer.lrr"):
        run_tune(QUICKSTART, ["train.optimizer.lrr=log(1e-4,1e-2)"], trials=2, out=tmp_path / "t")
    assert not (tmp_path / "t").exists()


def _plan(**overrides):
    plan = {"metric": "val/loss", "direction": "min", "sampler": "random", "seed": 0, "prune": True,
            "startup_trials": 1, "warmup_epochs": 0}
    return plan | overrides


def test_pruning_stops_a_run_the_test_makes_bad(fakes, tmp_path, capsys):
    """Trial 0 trains normally; trial 1 has a learning rate of ~0, so its validation loss after epoch 1 is worse
    than trial 0's: the median pruner stops it there, through the jasc_epoch_end hook, and its run folder says so."""
    import engine_fakes

    from jasc_core.sweeps.trial import run_pruned

    study = open_study(tmp_path, _plan())
    good = study.ask()
    status = run_pruned(good, "val/loss", engine_fakes.make_recipe(**{"train.epochs": 1, "evaluate.plots": False}),
                        "fake.yaml", out=tmp_path / "good", evaluate=False)
    study.tell(good, min(study.trials[0].intermediate_values.values()))
    assert status == "finished" and sorted(study.trials[0].intermediate_values) == [1]

    bad = study.ask()
    recipe = engine_fakes.make_recipe(**{"train.epochs": 3, "evaluate.plots": False, "train.optimizer.lr": 1e-12})
    assert run_pruned(bad, "val/loss", recipe, "fake.yaml", out=tmp_path / "bad") == "pruned"
    meta = json.loads((tmp_path / "bad" / "run.json").read_text())
    assert meta["status"] == "pruned" and meta["pruned_epoch"] == 1
    assert len(json.loads((tmp_path / "bad" / "history.json").read_text())) == 1  # it trained no further
    assert (tmp_path / "bad" / "checkpoints" / "last.pt").is_file()
    assert "trial 1: pruned after epoch 1" in capsys.readouterr().out


def stand_in_trials(bad_lr: float = 3e-4, crash: set[int] | None = None):
    """Stands in for ``python -m jasc_core.sweeps.trial``: validation score -(log10 lr + 2.5)^2 over two epochs,
    reported to the study; a run with lr below ``bad_lr`` is pruned after epoch 1; trials in ``crash`` fail."""

    def run(command: RunCommand) -> str:
        args = list(command.args)
        tune_dir = Path(args[args.index("--tune-dir") + 1])
        trial_id = int(args[args.index("--trial-id") + 1])
        values = dict(args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "--set")
        plan = json.loads((tune_dir / "tune.json").read_text())
        trial = optuna.trial.Trial(open_study(tune_dir, plan), trial_id)
        if trial.number in (crash or set()):
            return "error: the run crashed"
        lr = float(values["train.optimizer.lr"])
        run_dir = Path(command.run_dir)
        run_dir.mkdir(parents=True)
        (run_dir / "recipe.yaml").write_text(f"train:\n  optimizer: {{name: radam, lr: {lr}}}\n")
        score = -((math.log10(lr) + 2.5) ** 2)
        history = [{"epoch": 1, "val": {"val/score": score - 0.1}}]
        trial.report(score - 0.1, 1)
        if lr < bad_lr:
            (run_dir / "run.json").write_text(json.dumps({"status": "pruned"}))
        else:
            history.append({"epoch": 2, "val": {"val/score": score}})
            trial.report(score, 2)
            (run_dir / "run.json").write_text(json.dumps({"status": "finished"}))
        (run_dir / "history.json").write_text(json.dumps(history))
        return ""

    return run


def test_study_runs_tells_writes_the_best_recipe_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(launchers, "execute", stand_in_trials(crash={3}))
    out, lines = tmp_path / "tune", []
    space = ["train.optimizer.lr=log(1e-4,1e-2)"]
    summary = run_tune(QUICKSTART, space, trials=5, out=out, jobs=2, echo=lines.append)
    trials = {t.number: t for t in open_study(out, json.loads((out / "tune.json").read_text())).trials}
    assert len(trials) == 5
    assert trials[0].params == {"train.optimizer.lr": 0.003}  # the baseline: the recipe as written
    assert trials[3].state.name == "FAIL" and trials[3].user_attrs["error"] == "error: the run crashed"
    completed = {n: t.value for n, t in trials.items() if t.state.name == "COMPLETE"}
    best = max(completed, key=completed.get)
    assert summary["best"]["number"] == best and summary["best"]["score"] == pytest.approx(completed[best])
    assert sum(summary["trials"].values()) == 5
    header = (out / "best.yaml").read_text().splitlines()[0]
    assert f"trial {best}, val/score = " in header
    assert (out / "best.yaml").read_text().endswith((out / "trials" / f"{best:04d}" / "recipe.yaml").read_text())
    rows = (out / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,score,epochs,run,train.optimizer.lr") and len(rows) == 6
    assert (out / "study.png").stat().st_size > 0

    # The same command again finds the study done; more trials continue it; a trial left running by a driver that
    # died is marked failed (interrupted) and its parameters are tried again.
    lines.clear()
    run_tune(QUICKSTART, space, trials=5, out=out, echo=lines.append)
    assert "(5 already ended)" in lines[0] and not any("trial" in line and "=" in line for line in lines[1:-1])
    study = open_study(out, json.loads((out / "tune.json").read_text()))
    orphan = study.ask()
    orphan.suggest_float("train.optimizer.lr", 1e-4, 1e-2, log=True)  # as the driver does before starting its run
    run_tune(QUICKSTART, space, trials=6, out=out, echo=lines.append)
    study = open_study(out, json.loads((out / "tune.json").read_text()))
    assert study.trials[orphan.number].user_attrs["interrupted"] is True
    retried = [t for t in study.trials if t.number > orphan.number]
    assert len(retried) == 1 and retried[0].params == orphan.params
    with pytest.raises(Exception, match="holds a different tune study"):
        run_tune(QUICKSTART, ["train.optimizer.lr=log(1e-5,1e-2)"], trials=6, out=out, echo=lines.append)


def test_tune_cli_prints_the_best_trial(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(launchers, "execute", stand_in_trials())
    code, stdout, stderr = cli("tune", str(QUICKSTART), "--space", "train.optimizer.lr=log(1e-3,1e-2)", "--trials", "3",
                               "--out", str(tmp_path / "t"))
    assert code == 0, stderr
    assert "best: trial " in stdout and "val/score = " in stdout and "best recipe:" in stdout


# -- slow: the real thing ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_eight_trials_on_the_quickstart_prune_and_write_the_best_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("JASC_CACHE", str(tmp_path / "cache"))
    sets = ["data.minutes=1.5", "train.epochs=4", "evaluate.plots=false", "model.encoder.channels=[8, 8, 8]",
            "model.heads.scene.channels=[8, 8]"]
    summary = run_tune(QUICKSTART, ["train.optimizer.lr=log(1e-4,1e-1)", "weighting.alpha=log(1e-3,1)"], trials=8,
                       out=tmp_path / "tune", sets=sets, jobs=2, threads=1, startup_trials=2,
                       echo=lambda line: None)
    assert sum(summary["trials"].values()) == 8 and summary["trials"].get("pruned", 0) >= 1
    assert summary["best"] is not None and (tmp_path / "tune" / "best.yaml").is_file()
    assert (tmp_path / "tune" / "study.png").is_file()
