"""The ``mlflow`` logger: a local MLflow run with the recipe as params, the epoch metrics and the run folder.

Store: ``<run>/mlruns/`` by default (or the entry's ``dir``), an SQLite tracking database ``mlflow.db`` beside the
artifacts in ``artifacts/`` (MLflow 3 refuses the old plain-file store unless told otherwise; SQLite is what it asks
for). Never a server: the tracking URI is always that local database, whatever ``MLFLOW_TRACKING_URI`` says. Browse
with ``mlflow ui --backend-store-uri sqlite:///<run>/mlruns/mlflow.db``.

Params: the resolved recipe flattened with dots (``train.optimizer.lr``). Metrics: the ``jasc_epoch_end`` numbers at
step = 1-based epoch, as history.json counts, then the final evaluation metrics as ``final/...``. Artifacts: the run folder's files at run
end (the store itself left out). A resumed run continues the same MLflow run (its id is kept in
``<run>/mlflow_run.json``). Options: ``log: [{name: mlflow, experiment: dcase, dir: /data/mlruns}]``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from jasc_core import Logger, hookimpl
from jasc_loggers import missing_dependency, output_dir

RUN_ID_FILE = "mlflow_run.json"
#: MLflow's own limits: params per log_batch call, characters per param value.
PARAMS_PER_BATCH, PARAM_VALUE_CHARS = 100, 6000
#: What MLflow refuses in a metric name (class labels such as "(object) banging" end up in per-class metric names).
_NOT_IN_NAMES = re.compile(r"[^\w\-. :/]")
#: Open MLflow runs by run folder: (client, mlflow run id, store folder).
_runs: dict[str, tuple[Any, str, Path]] = {}


class MLflow(Logger):
    """A local MLflow run: the recipe as params, the epoch and final metrics, the run folder as artifacts."""

    name = "mlflow"

    class Config(Logger.Config):
        experiment: str = Field("jasc", min_length=1, description="MLflow experiment the run is logged under")


@hookimpl
def jasc_register_components(register: Any) -> None:
    register(MLflow)


@hookimpl
def jasc_check_recipe(recipe: Mapping[str, Any]) -> list[str]:
    # The SQLite store needs SQLAlchemy, which mlflow-skinny does not bring; the extra installs full mlflow.
    return missing_dependency(recipe, MLflow, "mlflow") or missing_dependency(recipe, MLflow, "sqlalchemy")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested recipe data -> ``{"a.b.c": "value"}`` (lists as JSON, values cut to MLflow's length limit)."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[f"{prefix}{key}"] = text[:PARAM_VALUE_CHARS]
    return flat


@hookimpl
def jasc_run_start(run_dir: str, recipe: Mapping[str, Any]) -> None:
    _runs.pop(run_dir, None)
    found = MLflow.options(recipe)
    if found is None:
        return
    options = found[1]
    assert isinstance(options, MLflow.Config)
    # Imported here: mlflow is an optional extra, and a run that does not log must not need it.
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    store = output_dir(run_dir, options.dir, "mlruns").resolve()
    store.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(options.experiment)
    experiment_id = (experiment.experiment_id if experiment is not None
                     else client.create_experiment(options.experiment, artifact_location=(store / "artifacts").as_uri()))
    id_file = Path(run_dir) / RUN_ID_FILE
    previous = json.loads(id_file.read_text(encoding="utf-8")) if id_file.is_file() else {}
    if previous.get("store") == str(store):  # --resume: continue the same MLflow run
        run_id = previous["run_id"]
        client.update_run(run_id, status="RUNNING")
    else:
        run_id = client.create_run(experiment_id, run_name=Path(run_dir).name,
                                   tags={"jasc.run_dir": str(Path(run_dir).resolve())}).info.run_id
        id_file.write_text(json.dumps({"store": str(store), "run_id": run_id}), encoding="utf-8")
        params = [Param(key, value) for key, value in flatten(recipe).items()]
        for first in range(0, len(params), PARAMS_PER_BATCH):
            client.log_batch(run_id, params=params[first:first + PARAMS_PER_BATCH])
    _runs[run_dir] = (client, run_id, store)


def metric_name(key: str) -> str:
    """``key`` with every character MLflow rejects in a metric name replaced by ``_``."""
    return _NOT_IN_NAMES.sub("_", key)


def _log_metrics(run_dir: str, metrics: Mapping[str, float], step: int, prefix: str = "") -> None:
    from mlflow.entities import Metric

    client, run_id, _ = _runs[run_dir]
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(metric_name(f"{prefix}{key}"), float(value), now, step)
                                      for key, value in metrics.items() if key != "epoch"])


@hookimpl
def jasc_epoch_end(run_dir: str, epoch: int, metrics: Mapping[str, float]) -> None:
    if run_dir in _runs:
        _log_metrics(run_dir, metrics, epoch)


@hookimpl
def jasc_run_end(run_dir: str, metrics: Mapping[str, float]) -> None:
    if run_dir not in _runs:
        return
    client, run_id, store = _runs[run_dir]
    try:
        _log_metrics(run_dir, metrics, 0, prefix="final/")
        for path in sorted(Path(run_dir).iterdir()):
            if path.resolve() == store:
                continue  # the store inside the run folder must not copy itself
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path=path.name)
            else:
                client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, "FINISHED")
    finally:
        _runs.pop(run_dir, None)
