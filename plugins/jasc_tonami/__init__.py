"""jasc_tonami: the Tonami et al. MTL network of 001 Table II (encoder ``tonami_cnn``, heads ``tonami_scene`` and
``bigru``). See ``jasc_tonami.network`` for the layers and what the authors' code does differently."""

from __future__ import annotations

from jasc_core import hookimpl
from jasc_tonami.network import BiGRUHead, TonamiCNN, TonamiScene

__all__ = ["BiGRUHead", "TonamiCNN", "TonamiScene"]


@hookimpl
def jasc_register_components(register) -> None:
    register(TonamiCNN)
    register(TonamiScene)
    register(BiGRUHead)
