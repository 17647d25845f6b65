"""Mixup (Zhang et al. 2018; DESED's baseline mixes strong, weak and unlabelled batches): each clip's features are
mixed with another clip's of the batch, and so are their targets.

x' = lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha) per batch. A target is kept only where both clips have it
(mask ``m & m[perm]``): a mixed clip half labelled is not labelled. Scene class indices become class probabilities.

``perm`` pairs clips of one dataset only (``batch.datasets``; DESED_task 2024 mixes within each dataset): two datasets
annotate different classes, and a mix of them would carry a target for a class one of its clips never labelled.

``perm`` also pairs clips labelled alike only (the same ``batch.masks`` pattern: strong with strong, weak with weak,
unlabelled with unlabelled), as DESED's baseline mixes the strong, weak and unlabelled parts of its batch each within
itself. Pairing across them would drop labels: in a mean-teacher batch of 12 strong, 12 weak and 24 unlabelled clips,
a strong clip's partner is strong one time in four, so three quarters of the strong labels of every mixed batch were
lost (and now and then every label of a step; found by issue 27's step counts). A batch whose clips are all labelled
alike (one group) draws the same permutation as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import TASK_DESCRIPTIONS, Augmentation, Batch


class Mixup(Augmentation):
    """Mixes pairs of clips in a batch, features and targets alike (DESED's baseline: alpha 0.2, half the batches)."""

    name = "mixup"

    class Config(BaseModel):
        alpha: float = Field(0.2, gt=0, description="Beta(alpha, alpha) distribution of the mixing weight")
        probability: float = Field(0.5, ge=0, le=1, description="share of batches that are mixed")

    def forward(self, features: Tensor, batch: Batch, generator: torch.Generator) -> tuple[Tensor, Batch]:
        if float(torch.rand((), generator=generator)) >= self.config.probability or features.shape[0] < 2:
            return features, batch
        # Beta(a, a) from two Gamma draws (torch's Beta sampler takes no generator).
        a = torch.full((2,), self.config.alpha)
        g = torch._standard_gamma(a, generator=generator)
        lam = float(g[0] / g.sum())
        perm = within_groups_permutation(pairing_groups(batch, features.shape[0]), generator).to(features.device)
        mixed = lam * features + (1 - lam) * features[perm]
        targets, masks = {}, {}
        for key, target in batch.targets.items():
            task = TASK_DESCRIPTIONS[key.split("/")[0]]
            if not task.frame_level and target.dim() == 1:  # class indices -> probabilities
                target = torch.nn.functional.one_hot(target.clamp(min=0), batch.n_classes[task.name]).float()
            targets[key] = lam * target.float() + (1 - lam) * target.float()[perm]
            masks[key] = batch.masks[key] & batch.masks[key][perm]
        # Clips of one dataset share their class mask; the AND keeps that true for any caller's datasets list.
        class_masks = {key: mask & mask[perm] for key, mask in batch.class_masks.items()}
        return mixed, batch.replace(targets=targets, masks=masks, class_masks=class_masks)


def pairing_groups(batch: Batch, size: int) -> list[tuple[object, ...]]:
    """Each clip's group: its dataset and which targets it has (``batch.masks``); mixup pairs clips of one group."""
    datasets = batch.datasets or [None] * size
    keys = sorted(batch.masks)
    labelled = [batch.masks[key].cpu().tolist() for key in keys]
    return [(datasets[i], *(bool(mask[i]) for mask in labelled)) for i in range(size)]


def within_dataset_permutation(datasets: Sequence[str | None], size: int, generator: torch.Generator) -> Tensor:
    """A permutation of ``range(size)`` that maps each clip to a clip of the same dataset (``datasets[i]``; an empty
    list: one dataset)."""
    return within_groups_permutation(list(datasets or [None] * size), generator)


def within_groups_permutation(groups_of: Sequence[object], generator: torch.Generator) -> Tensor:
    """A permutation of ``range(len(groups_of))`` that maps each clip to a clip of its own group; one group draws
    ``torch.randperm`` as plain mixup does."""
    size = len(groups_of)
    groups: dict[object, list[int]] = {}
    for i, group in enumerate(groups_of):
        groups.setdefault(group, []).append(i)
    if len(groups) == 1:
        return torch.randperm(size, generator=generator)
    perm = torch.arange(size)
    for members in groups.values():
        index = torch.tensor(members)
        perm[index] = index[torch.randperm(len(members), generator=generator)]
    return perm
