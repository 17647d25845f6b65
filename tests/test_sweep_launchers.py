"""Sweep launchers: local processes, Ray tasks, Slurm jobs through submitit (its local executor stands in for Slurm).

Fast tests run tiny ``python -c`` commands or a stand-in for the run; the real 2 x 2 sweeps that compare the Ray and
submitit launchers with the local one are marked slow (a local Ray instance alone takes 20-30 s to start here).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from jasc_core.errors import ConfigError, RunError
from jasc_core.sweeps import launchers
from jasc_core.sweeps.launchers import (
    LauncherConfig,
    LocalLauncher,
    RayLauncher,
    SlurmLauncher,
    execute,
    load_launcher_config,
)
from jasc_core.sweeps.plan import RunCommand
from jasc_core.sweeps.sweep import run_sweep

QUICKSTART = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"


def command(tmp_path: Path, label: str, code: str, threads: int = 1) -> RunCommand:
    return RunCommand(label, ("-c", code), str(tmp_path / "runs" / label), str(tmp_path / "logs" / f"{label}.log"),
                      threads)


def run_all(launcher, commands):
    launcher.submit(commands)
    results = {}
    while launcher.pending:
        done, error = launcher.next_done()
        results[done.label] = error
    launcher.close()
    return results


def test_execute_sets_threads_and_returns_the_error_line(tmp_path):
    ok = command(tmp_path, "ok", "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])", 3)
    assert execute(ok) == ""
    assert Path(ok.log).read_text().split() == ["3", "3"]
    bad = command(tmp_path, "bad", "import sys; print('epoch 1'); print('error: boom', file=sys.stderr); sys.exit(2)")
    assert execute(bad) == "error: boom"


def test_local_launcher_keeps_jobs_in_flight_and_goes_on_after_a_failure(tmp_path):
    stamp = ("import sys, time; open({path!r}, 'a').write(f'{{time.time()}} start\\n'); time.sleep(0.3); "
             "open({path!r}, 'a').write(f'{{time.time()}} end\\n'); sys.exit({code})")
    path = str(tmp_path / "events")
    commands = [command(tmp_path, f"r{i}", stamp.format(path=path, code=1 if i == 1 else 0)) for i in range(4)]
    results = run_all(LocalLauncher(jobs=2), commands)
    assert set(results) == {"r0", "r1", "r2", "r3"}
    assert [label for label, error in results.items() if error] == ["r1"]
    events = sorted((float(t), kind) for t, kind in (line.split() for line in Path(path).read_text().splitlines()))
    running, most = 0, 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert most <= 2


class StandInRay:
    """Just enough of the ``ray`` module for RayLauncher: tasks run when their result is fetched."""

    class exceptions:  # noqa: N801 (the module's attribute name)
        RayError = RuntimeError

    def __init__(self):
        self.initialized, self.init_kwargs, self.options, self.shutdowns = False, None, None, 0
        self.refs, self.most_in_flight = {}, 0

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.initialized, self.init_kwargs = True, kwargs

    def shutdown(self):
        self.initialized, self.shutdowns = False, self.shutdowns + 1

    def remote(self, **options):
        self.options, ray = options, self

        class Task:
            def __init__(self, function):
                self.function = function

            def remote(self, *args):
                ref = object()
                ray.refs[ref] = (self.function, args)
                ray.most_in_flight = max(ray.most_in_flight, len(ray.refs))
                return ref

        return Task

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        function, args = self.refs.pop(ref)
        return function(*args)


def test_ray_launcher_resources_concurrency_failures_and_shutdown(tmp_path, monkeypatch):
    def fake_execute(cmd):
        if cmd.label == "r2":
            raise RuntimeError("the node died\nmore detail")
        return "error: bad value" if cmd.label == "r1" else ""

    monkeypatch.setattr(launchers, "execute", fake_execute)
    ray = StandInRay()
    config = LauncherConfig(name="ray", cpus_per_run=2, gpus_per_run=0.5)
    results = run_all(RayLauncher(2, config, ray=ray), [command(tmp_path, f"r{i}", "") for i in range(5)])
    assert results == {"r0": "", "r1": "error: bad value", "r2": "ray: RuntimeError: the node died", "r3": "",
                       "r4": ""}
    # A local instance sized for the runs in flight, each task reserving its CPUs and GPUs, never retried.
    assert ray.init_kwargs["num_cpus"] == 4 and ray.init_kwargs["num_gpus"] == 1
    assert ray.options == {"num_cpus": 2, "num_gpus": 0.5, "max_retries": 0}
    assert ray.most_in_flight == 2 and ray.shutdowns == 1


def test_ray_launcher_joins_a_running_cluster_and_leaves_it_up(tmp_path):
    ray = StandInRay()
    ray.init(address="auto")  # the user's script connected already
    launcher = RayLauncher(1, LauncherConfig(name="ray", address="ray://head:10001"), ray=ray)
    launcher.close()
    assert ray.init_kwargs == {"address": "auto"} and ray.shutdowns == 0


def test_submitit_local_executor_runs_commands_and_reports_a_failed_job(tmp_path):
    pytest.importorskip("submitit", reason="submitit is the slurm extra: pip install -e '.[slurm]'")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    commands = [command(tmp_path, "bad", "import sys; print('error: diverged'); sys.exit(2)"),
                # Its log cannot be created (its folder is a file): the job itself fails on the node.
                RunCommand("lost", ("-c", ""), str(tmp_path / "runs" / "lost"), str(blocked / "lost.log"), 1)]
    config = LauncherConfig(name="slurm", cluster="local", time_min=5)
    results = run_all(SlurmLauncher(2, config, tmp_path / "slurm"), commands)
    assert results["bad"] == "error: diverged"
    assert results["lost"].startswith("slurm job ") and "Error" in results["lost"]
    assert any((tmp_path / "slurm").iterdir())  # submitit's job folders, with their logs


def test_launcher_file_and_flags(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("launcher:\n  name: slurm\n  partition: gpu\n  time_min: 30\n  setup: [module load cuda]\n"
                    "  slurm_parameters: {account: asc}\n")
    config = load_launcher_config(path, name=None, partition="cpu", time_min=None)
    assert (config.name, config.partition, config.time_min, config.setup) == ("slurm", "cpu", 30, ["module load cuda"])
    assert config.slurm_parameters == {"account": "asc"}
    path.write_text("launcher:\n  name: slurm\n  partion: gpu\n")
    with pytest.raises(ConfigError, match=r"launcher\.partion: Extra inputs"):
        load_launcher_config(path)
    with pytest.raises(ConfigError, match=r"launcher\.name"):
        load_launcher_config(None, name="kubernetes")


@pytest.mark.parametrize(("launcher", "extra"), [("ray", "ray"), ("slurm", "slurm")])
def test_missing_extra_is_one_line_naming_the_install(cli, tmp_path, monkeypatch, launcher, extra):
    monkeypatch.setitem(sys.modules, "ray" if extra == "ray" else "submitit", None)  # import fails
    code, _, stderr = cli("sweep", str(QUICKSTART), "--grid", "seed=0", "--seeds", "1", "--launcher", launcher,
                          "--out", str(tmp_path / "s"))
    assert code == 2
    assert stderr.strip().count("\n") == 0 and f'pip install -e ".[{extra}]"' in stderr
    assert not (tmp_path / "s").exists()


def fake_runs(failing: set[str]):
    """Stands in for ``jasc run``: a finished run folder whose scene accuracy is read from its --set values; the
    runs labelled in ``failing`` fail with an error line in their log."""

    def run(command: RunCommand) -> str:
        if command.label in failing:
            Path(command.log).parent.mkdir(parents=True, exist_ok=True)
            Path(command.log).write_text("epoch 1 ...\nerror: training diverged\n")
            return "error: training diverged"
        values = dict(command.args[i + 1].split("=", 1) for i, arg in enumerate(command.args) if arg == "--set")
        run_dir = Path(command.run_dir)
        run_dir.mkdir(parents=True)
        (run_dir / "run.json").write_text(json.dumps({"status": "finished"}))
        accuracy = float(values["weighting.alpha"]) / 2 + int(values["seed"]) / 10
        (run_dir / "metrics.json").write_text(json.dumps({"eval": {"scene": {"accuracy": accuracy}}}))
        return ""

    return run


def test_a_failed_run_is_in_the_summary_with_its_log_and_the_rest_go_on(tmp_path, monkeypatch):
    bad = "weighting.alpha=1__seed1"
    monkeypatch.setattr(launchers, "execute", fake_runs({bad}))
    out, lines = tmp_path / "sweep", []
    with pytest.raises(RunError, match="1 of 4 runs failed"):
        run_sweep(QUICKSTART, ["weighting.alpha=0.01,1"], seeds=2, jobs=2, out=out, echo=lines.append)
    summary = json.loads((out / "summary.json").read_text())
    log = str((out / "logs" / f"{bad}.log").resolve())
    assert summary["failures"] == {bad: {"error": "error: training diverged", "log": log}}
    assert {row["label"]: row["metrics"]["scene/accuracy"]["n"] for row in summary["rows"]} == {
        "weighting.alpha=0.01": 2, "weighting.alpha=1": 1}
    assert any(f"failed   {bad}: error: training diverged (log: {log})" in line for line in lines)

    # The same sweep resumed on another launcher runs only the failed run: the launcher is not part of the plan.
    ray = StandInRay()
    monkeypatch.setitem(sys.modules, "ray", ray)  # the stand-in, also where ray is not installed
    monkeypatch.setattr(launchers, "execute", fake_runs(set()))
    summary = run_sweep(QUICKSTART, ["weighting.alpha=0.01,1"], seeds=2, jobs=2, out=out, echo=lines.append,
                        launcher=LauncherConfig(name="ray"), make=lambda c, j, f: RayLauncher(j, c, ray=ray))
    assert "(3 already finished)" in lines[-2] and summary["failures"] == {}
    assert all(row["metrics"]["scene/accuracy"]["n"] == 2 for row in summary["rows"])


# -- slow: the real thing ------------------------------------------------------------------------------------------

TINY = ["data.minutes=1.5", "train.epochs=2", "evaluate.plots=false", "model.encoder.channels=[8, 8, 8]",
        "model.heads.scene.channels=[8, 8]", "train.deterministic=true"]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The 2 x 2 reference sweep (2 weightings x 2 seeds) with the local launcher, 1 thread per run."""
    root = tmp_path_factory.mktemp("launchers")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JASC_CACHE", str(root / "cache"))
        run_sweep(QUICKSTART, ["weighting.alpha=0.01,1"], sets=TINY, seeds=2, jobs=2, threads=1, out=root / "local",
                  echo=lambda line: None)
    return root


@pytest.mark.slow
def test_ray_sweep_matches_the_local_sweep(local_sweep, monkeypatch):
    pytest.importorskip("ray", reason="ray is an optional extra: pip install -e '.[ray]'")
    monkeypatch.setenv("JASC_CACHE", str(local_sweep / "cache"))
    start = time.time()
    run_sweep(QUICKSTART, ["weighting.alpha=0.01,1"], sets=TINY, seeds=2, jobs=2, threads=1, out=local_sweep / "ray",
              launcher=LauncherConfig(name="ray", cpus_per_run=1), echo=lambda line: None)
    print(f"ray sweep: {time.time() - start:.0f} s")
    import ray

    assert not ray.is_initialized()  # the local instance the sweep started is shut down
    assert (local_sweep / "ray" / "summary.csv").read_bytes() == (local_sweep / "local" / "summary.csv").read_bytes()


@pytest.mark.slow
def test_submitit_sweep_matches_the_local_sweep(local_sweep, monkeypatch):
    pytest.importorskip("submitit", reason="submitit is the slurm extra: pip install -e '.[slurm]'")
    monkeypatch.setenv("JASC_CACHE", str(local_sweep / "cache"))
    run_sweep(QUICKSTART, ["weighting.alpha=0.01,1"], sets=TINY, seeds=2, jobs=2, threads=1,
              out=local_sweep / "submitit", launcher=LauncherConfig(name="slurm", cluster="local"),
              echo=lambda line: None)
    assert ((local_sweep / "submitit" / "summary.csv").read_bytes()
            == (local_sweep / "local" / "summary.csv").read_bytes())
