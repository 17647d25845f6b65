"""Every component kind the core knows, and the kind of a component class."""

from __future__ import annotations

from jasc_core.contract.components import (
    Augmentation,
    Component,
    Dataset,
    Encoder,
    FeatureExtractor,
    Head,
    ThresholdOptimizer,
)
from jasc_core.contract.logger import Logger
from jasc_core.contract.schedule import Schedule
from jasc_core.contract.weighting import Weighting
from jasc_core.errors import ConfigError

#: Every kind the core knows, in the order listings show them.
KINDS: dict[str, type[Component]] = {
    base.kind: base
    for base in (FeatureExtractor, Encoder, Head, Augmentation, Weighting, Schedule, Dataset, ThresholdOptimizer,
                 Logger)
}


def kind_of(cls: type) -> str:
    """The kind key of a component class (the kind base class it derives from)."""
    for kind, base in KINDS.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    bases = ", ".join(b.__name__ for b in KINDS.values())
    raise ConfigError(f"{cls!r} is not a jasc component: derive it from one of {bases}")
