"""Feature augmentation (issue 11 item 6): conformance, what each method does, training only, resumable."""

from __future__ import annotations

import json

import engine_fakes
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_augment import FreqMixStyle, Mixup, SpecMask
from jasc_core import Batch, training
from jasc_core.errors import ConfigError

AUGMENT = [{"name": "spec_mask", "time": 0.3, "freq": 0.3}, {"name": "mixup", "probability": 1.0},
           {"name": "freq_mixstyle", "probability": 1.0}]


@pytest.mark.parametrize("cls", [SpecMask, Mixup, FreqMixStyle])
def test_augmentations_conform(cls, jasc_conformance):
    jasc_conformance(cls)


def _batch(b=4):
    return Batch(waveform=torch.zeros(b, 1), index=torch.arange(b), clip_ids=[str(i) for i in range(b)],
                 targets={"scene": torch.tensor([0, 1, 1, 0])[:b], "event": torch.rand(b, 10, 3).round()},
                 masks={"scene": torch.tensor([True, True, False, True])[:b], "event": torch.ones(b, dtype=torch.bool)},
                 n_classes={"scene": 2, "event": 3})


def test_spec_mask_zeroes_one_band_per_axis_within_the_share():
    features = torch.ones(8, 100, 40)
    out, _ = SpecMask({"time": 0.15, "freq": 0.15})(features, _batch(), torch.Generator().manual_seed(1))
    zero = out == 0
    for clip in zero:
        rows, cols = clip.all(dim=1), clip.all(dim=0)  # fully masked frames and bins
        assert rows.sum() <= 15 and cols.sum() <= 6
        masked = clip.any(dim=1) & ~rows  # frames touched only by the frequency band
        assert torch.equal(clip[masked].any(dim=0), cols)


def test_mixup_mixes_targets_of_clips_labelled_alike_so_no_label_is_dropped():
    features = torch.randn(4, 10, 5)
    batch = _batch()
    out, mixed = Mixup({"probability": 1.0})(features, batch, torch.Generator().manual_seed(3))
    # Recover lam and perm: each mixed clip is lam x_i + (1 - lam) x_perm(i).
    scene = mixed.targets["scene"]
    assert scene.shape == (4, 2) and torch.allclose(scene.sum(dim=1), torch.ones(4))
    generator = torch.Generator().manual_seed(3)
    torch.rand((), generator=generator)
    g = torch._standard_gamma(torch.full((2,), 0.2), generator=generator)
    lam = float(g[0] / g.sum())
    # Clip 2 has no scene label: it is mixed with itself; clips 0, 1, 3 among themselves.
    perm = torch.arange(4)
    perm[[0, 1, 3]] = torch.tensor([0, 1, 3])[torch.randperm(3, generator=generator)]
    assert torch.allclose(out, lam * features + (1 - lam) * features[perm])
    assert torch.equal(mixed.masks["scene"], batch.masks["scene"])
    assert torch.allclose(mixed.targets["event"], lam * batch.targets["event"] + (1 - lam) *
                          batch.targets["event"][perm])


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(st.sampled_from(["strong", "weak", "unlabelled"]), min_size=2, max_size=24),
       seed=st.integers(0, 2**31 - 1))
def test_mixup_of_a_mean_teacher_batch_keeps_every_strong_and_weak_label(kinds, seed):
    # DESED mixes its strong, weak and unlabelled parts each within itself. Pairing across them dropped labels
    # (a strong clip mixed with an unlabelled one kept no frame target): most of a mixed batch's strong labels.
    b = len(kinds)
    frames = torch.tensor([k == "strong" for k in kinds])
    clip = torch.tensor([k == "weak" for k in kinds])
    batch = Batch(waveform=torch.zeros(b, 1), index=torch.arange(b), clip_ids=[str(i) for i in range(b)],
                  targets={"event": torch.rand(b, 7, 3).round(), "event/clip": torch.rand(b, 3).round()},
                  masks={"event": frames, "event/clip": clip}, n_classes={"event": 3})
    features = torch.eye(b).unsqueeze(1).expand(b, 2, b).clone()  # each clip its own one-hot row
    out, mixed = Mixup({"probability": 1.0, "alpha": 1.0})(features, batch, torch.Generator().manual_seed(seed))
    assert torch.equal(mixed.masks["event"], frames) and torch.equal(mixed.masks["event/clip"], clip)
    for i in range(b):
        assert {kinds[j] for j in torch.nonzero(out[i, 0]).flatten().tolist()} == {kinds[i]}


def test_freq_mixstyle_mixes_statistics_not_targets():
    features = torch.randn(6, 50, 8) * torch.linspace(0.5, 3, 8) + torch.linspace(-2, 2, 8)
    batch = _batch(4)
    out, same = FreqMixStyle({"probability": 1.0})(features, batch, torch.Generator().manual_seed(0))
    assert same is batch and out.shape == features.shape and not torch.allclose(out, features)
    # Each clip keeps its normalised content: per-bin standardisation is unchanged.
    z = lambda x: (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)  # noqa: E731
    assert torch.allclose(z(out), z(features), atol=1e-4)


def test_augmentation_is_training_only_and_a_resumed_run_draws_the_same_masks(fakes, tmp_path, monkeypatch):
    overrides = {"augment": AUGMENT, "train.epochs": 3, "evaluate.plots": False}
    seen = []
    original = training.Trainer.augment

    def spy(self, features, batch):
        seen.append(features.shape)
        return original(self, features, batch)

    monkeypatch.setattr(training.Trainer, "augment", spy)
    whole = training.run_recipe(engine_fakes.make_recipe(**overrides), recipe_path="fake.yaml",
                                out_dir=tmp_path / "whole")
    assert len(seen) == 3 * 3  # every training step (3 per epoch), and nothing in validation or evaluation
    plain = training.run_recipe(engine_fakes.make_recipe(**{**overrides, "augment": []}), recipe_path="fake.yaml",
                                out_dir=tmp_path / "plain")
    first = [json.loads((d / "history.json").read_text())[0]["train_losses"] for d in (whole, plain)]
    assert first[0] != first[1]  # the augmentations did change training

    monkeypatch.setattr(training.Trainer, "augment", original)
    engine_fakes.resumed(engine_fakes.interrupted_run(monkeypatch, tmp_path / "k", overrides, epoch=2), overrides)

    def final(run_dir):
        history = json.loads((run_dir / "history.json").read_text())
        return [{k: v for k, v in r.items() if k not in ("time", "train_clips_per_s")} for r in history]

    assert final(tmp_path / "k") == final(whole)


def test_an_unknown_augmentation_is_a_recipe_error_with_its_position(fakes):
    with pytest.raises(ConfigError, match=r"augment\[1\]\.name: no augment 'mixupp'.*did you mean 'mixup'"):
        engine_fakes.make_recipe(augment=[{"name": "spec_mask"}, {"name": "mixupp"}])
