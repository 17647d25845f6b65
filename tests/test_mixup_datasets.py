"""Mixup within one dataset (DESED_task 2024): a mixed clip never joins two datasets' clips."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_augment import Mixup
from jasc_augment.mixup import within_dataset_permutation
from jasc_core import Batch


@settings(max_examples=80, deadline=None)
@given(datasets=st.lists(st.sampled_from(["desed", "maestro", "other", None]), min_size=2, max_size=12),
       seed=st.integers(0, 2**31 - 1))
def test_mixup_never_mixes_two_datasets(datasets, seed):
    b = len(datasets)
    # Each clip's features are its own one-hot row: a mixed clip shows exactly which clips went into it.
    features = torch.eye(b).unsqueeze(1).expand(b, 3, b).clone()
    class_masks = torch.tensor([[name != "maestro", True, name != "other"] for name in datasets])
    batch = Batch(waveform=torch.zeros(b, 1), index=torch.arange(b), clip_ids=[str(i) for i in range(b)],
                  targets={"event": torch.rand(b, 3, 3)}, masks={"event": torch.ones(b, dtype=torch.bool)},
                  class_masks={"event": class_masks}, datasets=list(datasets), n_classes={"event": 3})
    out, mixed = Mixup({"probability": 1.0, "alpha": 1.0})(features, batch, torch.Generator().manual_seed(seed))
    for i in range(b):
        sources = torch.nonzero(out[i, 0]).flatten().tolist()
        assert {datasets[j] for j in sources} <= {datasets[i]}, (i, sources, datasets)
    assert torch.equal(mixed.class_masks["event"], class_masks)  # one dataset, one class mask


@given(datasets=st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=10), seed=st.integers(0, 1000))
def test_within_dataset_permutation_is_a_permutation(datasets, seed):
    perm = within_dataset_permutation(datasets, len(datasets), torch.Generator().manual_seed(seed))
    assert sorted(perm.tolist()) == list(range(len(datasets)))
    assert all(datasets[int(j)] == datasets[i] for i, j in enumerate(perm))


def test_one_dataset_draws_the_permutation_of_earlier_releases():
    for datasets in ([], [None] * 5, ["desed"] * 5):
        perm = within_dataset_permutation(datasets, 5, torch.Generator().manual_seed(4))
        assert torch.equal(perm, torch.randperm(5, generator=torch.Generator().manual_seed(4)))
