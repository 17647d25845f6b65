"""Class masks: which event classes each clip's dataset annotates, and the losses that leave the others out.

A clip is neither a positive nor a negative for a class outside its dataset's annotation (``Clip.event_classes``,
collated into ``Batch.class_masks``). ``labelled_subset`` returns its targets as ``LabelledTargets``, whose
``class_masks`` the event loss (and weightings with losses of their own) read.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn


class LabelledTargets(dict):
    """Targets keyed by output name (a plain dict to every reader), plus ``class_masks``: ``[B, M]`` bool per output
    name, True where the clip's dataset annotates the class, cut to the same clips; absent for an output where every
    clip annotates every class."""

    def __init__(self, *args: object, class_masks: Mapping[str, Tensor] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.class_masks: dict[str, Tensor] = dict(class_masks or {})


def class_masks_of(targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The class masks that travel with ``targets`` (empty for a plain dict: every class annotated)."""
    return getattr(targets, "class_masks", {})


def broadcast_class_mask(mask: Tensor, like: Tensor) -> Tensor:
    """A ``[B, M]`` class mask as a float tensor broadcastable to ``like`` (``[B, M]`` or ``[B, T, M]``)."""
    mask = mask.to(device=like.device, dtype=like.dtype)
    return mask.unsqueeze(1) if like.dim() == 3 else mask


def masked_bce_with_logits(logits: Tensor, target: Tensor, class_mask: Tensor | None = None) -> Tensor:
    """Binary cross-entropy with logits, mean over the entries whose class is annotated (``class_mask`` ``[B, M]``;
    None: all). A masked entry contributes exactly nothing, to the value and to the gradient; with no annotated
    entry the loss is a zero that still belongs to the graph."""
    if class_mask is None:
        return nn.functional.binary_cross_entropy_with_logits(logits, target)
    weight = broadcast_class_mask(class_mask, logits).expand_as(logits)
    elements = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (elements * weight).sum() / weight.sum().clamp(min=1.0)
