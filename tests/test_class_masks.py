"""Class masks: a clip is neither a positive nor a negative for a class its dataset does not annotate.

Pinned here: the masked BCE (mean over annotated entries), the labelled subset carrying the masks, the attention
pooling of DESED's CRNN leaving masked classes out, every registered weighting's event loss giving a masked class
exactly zero gradient, and mixup pairing clips of one dataset only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core import component, components
from jasc_core.contract.batch import Batch
from jasc_core.contract.tasks import (
    EventTask,
    LabelledTargets,
    default_task_losses,
    labelled_subset,
    masked_bce_with_logits,
)

M = 4  # event classes
T = 6  # frames


def _head(seed: int = 0):
    torch.manual_seed(seed)
    head = component("head", "rnn")({"hidden_size": 8, "num_layers": 1, "dropout": 0.0, "clip_output": "attention"},
                                     task="event", n_classes=M, in_channels=2, in_features=3)
    return head.eval()


def _batch(class_masks: torch.Tensor, seed: int, weak_rows: int = 0) -> Batch:
    """A batch of ``len(class_masks)`` clips: the first ``weak_rows`` weakly labelled, the rest strongly (soft)."""
    generator = torch.Generator().manual_seed(seed)
    n = class_masks.shape[0]
    strong = torch.rand(n, T, M, generator=generator).round()
    strong[:, :, 0] = torch.rand(n, T, generator=generator)  # soft targets in [0, 1]
    weak = torch.rand(n, M, generator=generator).round()
    is_weak = torch.arange(n) < weak_rows
    targets = {"event": strong, "event/clip": weak}
    masks = {"event": ~is_weak, "event/clip": is_weak}
    return Batch(waveform=torch.zeros(n, 10), index=torch.arange(n), clip_ids=[str(i) for i in range(n)],
                 targets=targets, masks={k: v for k, v in masks.items()},
                 class_masks={"event": class_masks, "event/clip": class_masks}, datasets=["d"] * n)


def _forward(head, batch: Batch, pool_mask: bool = True):
    feature_map = torch.randn(len(batch), 2, T, 3, generator=torch.Generator().manual_seed(7))
    output = head(feature_map, class_mask=batch.class_masks["event"] if pool_mask else None)
    frame, clip = output["frame"], output["clip"]
    frame.retain_grad()
    clip.retain_grad()
    return {"event": frame, "event/clip": clip}


def test_masked_bce_is_the_mean_over_annotated_entries():
    logits, target = torch.randn(3, T, M), torch.rand(3, T, M)
    mask = torch.tensor([[True, False, True, True], [True] * M, [False, False, True, False]])
    elements = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    expected = np.mean([elements[b, t, m].item() for b in range(3) for t in range(T) for m in range(M) if mask[b, m]])
    assert masked_bce_with_logits(logits, target, mask).item() == pytest.approx(expected, rel=1e-6)
    everything = torch.ones(3, M, dtype=torch.bool)
    assert torch.allclose(masked_bce_with_logits(logits, target, everything),
                          torch.nn.functional.binary_cross_entropy_with_logits(logits, target))


def test_labelled_subset_cuts_class_masks_with_the_targets():
    mask = torch.tensor([[True, False, True, True], [True] * M, [False] * 3 + [True]])
    batch = _batch(mask, seed=0, weak_rows=1)
    outputs = {"event": torch.randn(3, T, M), "event/clip": torch.randn(3, M)}
    outs, targets = labelled_subset(outputs, batch, ["event"])
    assert isinstance(targets, LabelledTargets) and isinstance(targets, dict)
    assert targets.class_masks["event"].tolist() == mask[1:].tolist()
    assert targets.class_masks["event/clip"].tolist() == mask[:1].tolist()
    assert set(targets) == {"event", "event/clip"}  # the masks ride along, they are no target


def _weightings():
    names = []
    for cls in components("weighting"):
        try:
            cls()
        except Exception:  # a scheme that needs settings a default cannot give is covered by its own tests
            continue
        names.append(cls.name)
    return names


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    masks=st.lists(st.lists(st.booleans(), min_size=M, max_size=M), min_size=1, max_size=5),
    weak_rows=st.integers(0, 5),
    weighting=st.sampled_from(["default", *_weightings()]),
    full_clips=st.integers(0, 2),
)
def test_a_clip_never_moves_the_gradient_of_a_class_its_dataset_does_not_annotate(
    seed, masks, weak_rows, weighting, full_clips
):
    class_masks = torch.tensor(masks + [[True] * M] * full_clips)
    batch = _batch(class_masks, seed, weak_rows=min(weak_rows, len(masks)))
    head = _head(seed % 3)
    outputs = _forward(head, batch)
    outs, targets = labelled_subset(outputs, batch, ["event"])
    losses = (default_task_losses(outs, targets) if weighting == "default"
              else component("weighting", weighting)().task_losses(outs, targets))
    if "event" not in losses:
        return
    losses["event"].backward()
    for key, output in outputs.items():
        grad = output.grad if output.grad is not None else torch.zeros_like(output)
        unannotated = ~class_masks if grad.dim() == 2 else ~class_masks[:, None, :].expand_as(grad)
        assert torch.all(grad[unannotated] == 0), (key, weighting)
    # A class no clip of the batch annotates: its own parameters get exactly zero gradient (frame classifier row and
    # attention-pooling row: the masked softmax over classes gives its score no share).
    for c in range(M):
        if not bool(class_masks[:, c].any()):
            for layer in (head.classifier, head.attention):
                for param in (layer.weight, layer.bias):
                    assert param.grad is None or torch.all(param.grad[c] == 0), (c, weighting)


def test_without_the_pooling_mask_an_unannotated_class_would_get_gradient():
    # The check above can fail: pooling over every class lets the masked class's attention score move the others.
    class_masks = torch.tensor([[True, False, True, True]] * 2)
    batch = _batch(class_masks, seed=1, weak_rows=2)
    head = _head()
    outs, targets = labelled_subset(_forward(head, batch, pool_mask=False), batch, ["event"])
    EventTask().loss(outs, targets).backward()
    assert torch.all(head.classifier.weight.grad[1] == 0)  # the loss mask alone keeps the frame row out
    assert head.attention.weight.grad[1].abs().sum() > 0  # but not the softmax over classes


def test_masked_focal_loss_with_every_class_annotated_is_the_plain_one():
    outputs = {"event": torch.randn(2, T, M)}
    target = torch.rand(2, T, M).round()
    for reduction in ("sum", "mean"):
        mfl = component("weighting", "mfl")({"reduction": reduction})
        plain = mfl.task_losses(outputs, {"event": target})["event"]
        every = {"event": torch.ones(2, M, dtype=torch.bool)}
        masked = mfl.task_losses(outputs, LabelledTargets({"event": target}, class_masks=every))["event"]
        assert torch.allclose(plain, masked)


def test_masked_focal_loss_leaves_unannotated_classes_out():
    outputs = {"event": torch.randn(2, T, M)}
    target = torch.rand(2, T, M).round()
    mask = torch.tensor([[True, True, False, False], [True] * M])
    mfl = component("weighting", "mfl")({"reduction": "mean"})
    masked = mfl.task_losses(outputs, LabelledTargets({"event": target}, class_masks={"event": mask}))["event"]
    kept = [(0, slice(0, 2)), (1, slice(0, M))]
    sums = [mfl.task_losses({"event": outputs["event"][b:b + 1, :, cols]}, {"event": target[b:b + 1, :, cols]})
            ["event"] * T * (cols.stop - cols.start) for b, cols in kept]
    assert masked.item() == pytest.approx(sum(s.item() for s in sums) / (T * (2 + M)), rel=1e-5)
