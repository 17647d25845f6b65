"""jasc_pretrained: audio encoders pretrained on AudioSet that load their official checkpoints.

Encoders ``beats`` (BEATs iter3 / iter3+, Chen et al. 2023) and ``efficientat`` (EfficientAT MobileNetV3 ``mn``
models, Schmid et al. 2023) with their front ends ``beats_fbank`` and ``efficientat_mel``; ``jasc weights``
lists and downloads the published checkpoints. ``with_embeddings`` (features) appends a frozen encoder's frame
embeddings, cached per clip, and ``fusion`` (encoder) joins them with a trainable encoder's map. docs/pretrained.md
says how the implementations are proven equal to the official code (tools/pretrained_equivalence.py).
"""

from __future__ import annotations

from typing import Any

from jasc_core import hookimpl
from jasc_pretrained.beats import BEATs, BeatsEncoder, BeatsFbank
from jasc_pretrained.efficientat import MN, EfficientATEncoder, EfficientATMel
from jasc_pretrained.embeddings import WithEmbeddings
from jasc_pretrained.fusion import FusionEncoder

__all__ = ["BEATs", "MN", "BeatsEncoder", "BeatsFbank", "EfficientATEncoder", "EfficientATMel", "FusionEncoder",
           "WithEmbeddings"]


@hookimpl
def jasc_register_components(register) -> None:
    register(BeatsFbank)
    register(BeatsEncoder)
    register(EfficientATMel)
    register(EfficientATEncoder)
    register(WithEmbeddings)
    register(FusionEncoder)


@hookimpl
def jasc_register_commands(app: Any) -> None:
    from jasc_pretrained.cli import weights_app

    app.add_typer(weights_app, name="weights", help="Pretrained encoder weights: list and download checkpoints.")
