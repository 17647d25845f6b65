"""Layer-wise learning-rate decay (LLRD; Clark et al. 2020, ELECTRA; Bao et al. 2022, BEiT fine-tuning): when
fine-tuning a pretrained encoder, stage k of K (input side first) trains at ``lr * decay ** (K - 1 - k)``, so the
low, general layers move least. The encoder tags each parameter with ``lr_scale``; jasc's optimiser builder puts
the parameters of each scale in their own group (``jasc_core/training/optim.py``), which the LR schedule scales
alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def assign_lr_scales(stages: Sequence[Sequence[nn.Module]], decay: float) -> None:
    """Tag every parameter of ``stages[k]`` with ``lr_scale = decay ** (len(stages) - 1 - k)``; a parameter in
    several stages (BEATs' relative position table, held by every layer) keeps the scale of the first listing it."""
    tagged: set[int] = set()
    for k, modules in enumerate(stages):
        scale = decay ** (len(stages) - 1 - k)
        for module in modules:
            for param in module.parameters():
                if id(param) not in tagged:
                    tagged.add(id(param))
                    param.lr_scale = scale
