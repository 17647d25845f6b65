"""Optimiser and learning-rate schedule of a phase, and which parameters a phase trains."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from jasc_core.errors import ConfigError
from jasc_core.recipes.blocks import TrainConfig


def lr_lambda(config: TrainConfig, steps_per_epoch: int, epochs: int) -> Callable[[int], float]:
    """Multiplier of the peak LR per optimiser step: linear warmup, then constant or cosine to ``min_lr``."""
    warmup = int(round(config.lr_schedule.warmup_epochs * steps_per_epoch))
    total = max(1, epochs * steps_per_epoch)
    floor = config.lr_schedule.min_lr / config.optimizer.lr

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.lr_schedule.name == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_optimizer(config: TrainConfig, model_params: list[nn.Parameter], scheme_params: list[nn.Parameter]) -> torch.optim.Optimizer:
    # A parameter may carry ``lr_scale`` (set by its component: layer-wise learning-rate decay of a pretrained
    # encoder); it trains at lr * lr_scale. One group per scale, the unscaled one first (it is the logged LR).
    by_scale: dict[float, list[nn.Parameter]] = {}
    for param in model_params:
        by_scale.setdefault(float(getattr(param, "lr_scale", 1.0)), []).append(param)
    scales = sorted(by_scale, key=lambda scale: (scale != 1.0, -scale)) or [1.0]
    groups: list[dict[str, object]] = [{"params": by_scale.get(scale, []), "weight_decay": config.optimizer.weight_decay,
                                     "lr": config.optimizer.lr * scale} for scale in scales]
    if scheme_params:
        # The scheme's own parameters (e.g. uncertainty log-variances) must not be pulled towards 0 by weight decay.
        groups.append({"params": scheme_params, "weight_decay": 0.0})
    classes = {"radam": torch.optim.RAdam, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    return classes[config.optimizer.name](groups, lr=config.optimizer.lr)


def set_trainable(groups: dict[str, nn.Module], train: Sequence[str] | None) -> list[nn.Parameter]:
    """Unfreeze the named parameter groups (None: all) and freeze the rest; returns the trainable parameters."""
    unknown = [name for name in train or () if name not in groups]
    if unknown:
        raise ConfigError(f"schedule phase trains unknown parameter group(s) {', '.join(unknown)}; "
                          f"groups: {', '.join(groups)}")
    params: list[nn.Parameter] = []
    for name, module in groups.items():
        trains = train is None or name in train
        for param in module.parameters():
            param.requires_grad_(trains)
            if trains:
                params.append(param)
    return params


def keep_frozen_in_eval(groups: dict[str, nn.Module], train: Sequence[str] | None) -> None:
    """Frozen groups in eval mode: their batch-norm statistics and dropout stay as trained."""
    for name, module in groups.items():
        if train is not None and name not in train:
            module.eval()
