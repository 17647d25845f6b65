"""jasc_thresholds: decision-threshold optimisers (002's SGL-Thresh and its baselines) and ``jasc thresholds``."""

from __future__ import annotations

from jasc_core import hookimpl
from jasc_thresholds.coordinate import CoordinateAscent
from jasc_thresholds.fixed import FixedThreshold
from jasc_thresholds.numeric import NumericGradient
from jasc_thresholds.search import PerturbationSearch
from jasc_thresholds.select import CrossValidatedSelection
from jasc_thresholds.sgl import SGLThresh

OPTIMIZERS = (FixedThreshold, PerturbationSearch, NumericGradient, SGLThresh, CoordinateAscent, CrossValidatedSelection)


@hookimpl
def jasc_register_components(register) -> None:
    for cls in OPTIMIZERS:
        register(cls)


@hookimpl
def jasc_register_commands(app) -> None:
    from jasc_thresholds.commands import thresholds_app

    app.add_typer(thresholds_app, name="thresholds")
