"""Loss weighting schemes for joint scene/event multitask learning: constant, MFL, DWA and the usual baselines."""

from __future__ import annotations

from jasc_core import hookimpl
from jasc_weighting.constant import Constant
from jasc_weighting.constraints import check_recipe
from jasc_weighting.dwa import DynamicWeightAverage, dwa_weights
from jasc_weighting.focal import MultiFocal
from jasc_weighting.focal_dwa import MultiFocalDWA
from jasc_weighting.gradnorm import GradNorm
from jasc_weighting.pcgrad import PCGrad
from jasc_weighting.rlw import RandomLossWeighting
from jasc_weighting.uncertainty import Uncertainty

SCHEMES = (Constant, MultiFocal, DynamicWeightAverage, MultiFocalDWA, Uncertainty, GradNorm, PCGrad,
           RandomLossWeighting)

__all__ = [
    "SCHEMES",
    "Constant",
    "DynamicWeightAverage",
    "GradNorm",
    "MultiFocal",
    "MultiFocalDWA",
    "PCGrad",
    "RandomLossWeighting",
    "Uncertainty",
    "check_recipe",
    "dwa_weights",
]


@hookimpl
def jasc_register_components(register) -> None:
    for cls in SCHEMES:
        register(cls)
