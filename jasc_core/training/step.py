"""One optimiser step: forward each batch of the step, task losses, the schedule's extra losses, backward.

Per batch of the step (``StepPlan.batches``): waveforms -> features -> the recipe's augmentations (training only)
-> the model's outputs through the runtime's wrapped pipeline; outputs and targets cut to the clips labelled for each trained task; ``weighting.task_losses``; the
schedule's ``extra_losses``; with a recipe's ``distill`` block, the teachers' outputs join the batch's targets before
augmentation and the distillation terms join the extra losses (``jasc_core.training.distill``). A task present in several batches gets the clip-weighted mean of its losses. Then either
``weighting.combine(losses) + extra`` is back-propagated, or, for schemes with ``requires_task_gradients``, per-task
gradients of the shared (trainable encoder) parameters are merged by ``combine_gradients`` and the heads get the
gradient of their own task's weighted loss. Every loss is checked finite (``check`` raises naming it).

With several processes the runtime makes each task loss the mean over every process's clips (``share_losses``)
and averages gradients after backward: per-task gradients before ``combine_gradients`` (PCGrad is not linear),
all the others once the step's backward is done (``average_gradients``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from jasc_core.contract.batch import Batch
from jasc_core.contract.context import StepContext
from jasc_core.contract.schedule import Schedule
from jasc_core.contract.tasks import clips_in_loss, labelled_subset, task_class_masks
from jasc_core.contract.weighting import Weighting
from jasc_core.errors import RunError
from jasc_core.training.runtime import Runtime

if TYPE_CHECKING:  # distill.py imports this module
    from jasc_core.training.distill import Distiller


def step_losses(
    batches: Sequence[Batch], wrapped: nn.Module, model: nn.Module, runtime: Runtime, weighting: Weighting,
    schedule: Schedule, context: StepContext, check: Callable[[str, Tensor], None],
    augment: Callable[[Tensor, Batch], tuple[Tensor, Batch]] | None = None, distiller: Distiller | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The step's unweighted task losses and named extra losses (see the module docstring)."""
    parts: dict[str, list[tuple[Tensor, int]]] = {}
    extra: dict[str, Tensor] = {}
    for batch in batches:
        batch = runtime.to_device(batch)
        if distiller is not None:  # teachers' outputs as targets, so that a mixing augmentation mixes them too
            batch = distiller.attach(batch)
        augmented = {"batch": batch}

        def on_features(features: Tensor, augmented: dict[str, Batch] = augmented) -> Tensor:
            features, augmented["batch"] = augment(features, augmented["batch"])  # a mixing method mixes targets
            return features

        with runtime.autocast():
            # Class masks reach heads that pool over classes; mixing augmentations mix clips of one dataset only,
            # so the masks of the batch hold for the mixed clips too.
            class_masks = task_class_masks(batch)
            features, outputs = wrapped(batch.waveform, with_features=True,
                                        augment=on_features if augment is not None else None,
                                        **({"class_masks": class_masks} if class_masks else {}))
        outputs = {name: output.float() for name, output in outputs.items()}  # losses in fp32 (train.precision)
        batch = augmented["batch"]
        outs, targets = labelled_subset(outputs, batch, context.tasks)
        for task, loss in weighting.task_losses(outs, targets).items():
            check(task, loss)
            parts.setdefault(task, []).append((loss, clips_in_loss(task, targets)))
        named = schedule.extra_losses(model, features, outputs, batch, context)
        if distiller is not None:
            named = {**named, **distiller.losses(outputs, batch, runtime)}
        for name, loss in named.items():
            check(f"extra loss '{name}'", loss)
            extra[name] = extra[name] + loss if name in extra else loss
    means = {task: (_clip_weighted_mean(terms), sum(n for _, n in terms)) for task, terms in parts.items()}
    return runtime.share_losses(means, context.tasks), extra


def _clip_weighted_mean(terms: list[tuple[Tensor, int]]) -> Tensor:
    if len(terms) == 1:
        return terms[0][0]
    return sum(loss * n for loss, n in terms) / sum(n for _, n in terms)


def backward(
    losses: dict[str, Tensor], extra: dict[str, Tensor], weighting: Weighting, context: StepContext,
    trainable: Sequence[nn.Parameter], check: Callable[[str, Tensor], None], runtime: Runtime,
) -> None:
    """Gradients of the step's loss into ``.grad`` of the trainable parameters (averaged over processes)."""
    shared = list(context.shared_parameters)
    if weighting.requires_task_gradients and losses and shared:
        _task_gradients(losses, extra, weighting, context, shared, trainable, runtime)
        return
    total = weighting.combine(losses, context) if losses else torch.zeros(())
    for loss in extra.values():
        total = total + loss
    check("combined", total)
    if total.requires_grad:  # not where this process has no clip for any task of the step
        total.backward()
    runtime.average_gradients(trainable)


def _task_gradients(
    losses: dict[str, Tensor], extra: dict[str, Tensor], weighting: Weighting, context: StepContext,
    shared: list[nn.Parameter], trainable: Sequence[nn.Parameter], runtime: Runtime,
) -> None:
    grads: dict[str, list[Tensor]] = {}
    for task, loss in losses.items():
        # A task without clips on this process (its loss is the other processes' mean, a constant here) adds zeros.
        raw = (torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True) if loss.requires_grad
               else [None] * len(shared))
        grads[task] = runtime.average(
            [g if g is not None else torch.zeros_like(p) for g, p in zip(raw, shared, strict=True)])
    combined = list(weighting.combine_gradients(grads, losses, context))
    if len(combined) != len(shared):
        raise RunError(
            f"weighting '{weighting.name}': combine_gradients returned {len(combined)} tensors for "
            f"{len(shared)} shared parameters"
        )
    if extra:
        raw = torch.autograd.grad(sum(extra.values()), shared, retain_graph=True, allow_unused=True)
        raw = runtime.average([g if g is not None else torch.zeros_like(p) for g, p in zip(raw, shared, strict=True)])
        combined = [c + g for c, g in zip(combined, raw, strict=True)]
    shared_ids = {id(p) for p in shared}
    others = [p for p in trainable if id(p) not in shared_ids]
    if others:
        # Each head's parameters only see their own task's loss, so the weighted loss gives every head the gradient
        # of its own loss times the weight the scheme gives that task, and extra losses their share.
        heads_loss = weighting.combine(losses, context) + sum(extra.values())
        if heads_loss.requires_grad:
            heads_loss.backward(inputs=others)
        runtime.average_gradients(others)
    for param, grad in zip(shared, combined, strict=True):
        param.grad = grad.detach().to(param.dtype)
