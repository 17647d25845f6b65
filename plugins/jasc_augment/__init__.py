"""Feature augmentations for training: SpecAugment-style masking (003), mixup (DESED), Freq-MixStyle (CP-Mobile).

A recipe lists them in order under ``augment:``; the loop applies them to training features only, drawing from the
run's augmentation generator (saved in checkpoints, so a resumed run draws the same masks). See docs/training.md.
"""

from __future__ import annotations

from jasc_augment.freq_mixstyle import FreqMixStyle
from jasc_augment.masking import SpecMask
from jasc_augment.mixup import Mixup
from jasc_core import hookimpl

__all__ = ["FreqMixStyle", "Mixup", "SpecMask"]


@hookimpl
def jasc_register_components(register) -> None:
    for cls in (SpecMask, Mixup, FreqMixStyle):
        register(cls)
