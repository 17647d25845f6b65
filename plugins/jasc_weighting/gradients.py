"""Helpers of the gradient-based schemes: flat views of per-task gradients of the shared parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from jasc_core import StepContext


def reference_shapes(grads: Mapping[str, Sequence[Tensor | None]], context: StepContext) -> list[Tensor]:
    """One tensor per shared parameter giving its shape, dtype and device (the parameter itself when known).

    The engine passes ``context.shared_parameters``; where that is empty the first task gradient that is not ``None``
    stands in. A parameter that no task's loss reaches (gradient ``None`` everywhere and unknown) is an error.
    """
    if context.shared_parameters:
        return list(context.shared_parameters)
    lengths = {len(g) for g in grads.values()}
    if len(lengths) != 1:
        raise ValueError(f"per-task gradient lists differ in length: {sorted(lengths)}")
    shapes: list[Tensor] = []
    for i in range(lengths.pop()):
        found = next((g[i] for g in grads.values() if g[i] is not None), None)
        if found is None:
            raise ValueError(f"no task has a gradient for shared parameter {i} and context has no shared_parameters")
        shapes.append(found)
    return shapes


def flatten(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> Tensor:
    """Concatenate a gradient list into one float32 vector, ``None`` (parameter unused by the task) as zeros."""
    parts = [
        (g if g is not None else torch.zeros_like(ref)).reshape(-1).float() for g, ref in zip(grads, like, strict=True)
    ]
    return torch.cat(parts) if parts else torch.zeros(0)


def unflatten(vector: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector back into tensors shaped (and typed) like ``like``."""
    out, offset = [], 0
    for ref in like:
        n = ref.numel()
        out.append(vector[offset:offset + n].reshape(ref.shape).to(ref.dtype))
        offset += n
    return out
