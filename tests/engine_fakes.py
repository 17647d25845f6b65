"""Tiny components for engine/evaluation tests: 1-s clips at 8 kHz, a 1-conv encoder and linear heads.

Registered as plugin 'engine_fakes' on top of the installed plugins (constant weighting, soft schedule). The data is
learnable in a few epochs: scene 'low' clips carry a 300 Hz tone, 'high' clips a 2.5 kHz tone; event 'beep' is a
1 kHz burst, 'buzz' a burst of noise, each at a random time.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field

from jasc_core import (
    Clip,
    ClipList,
    Dataset,
    Encoder,
    Event,
    FeatureExtractor,
    Head,
    Schedule,
    Weighting,
    hookimpl,
)

SAMPLE_RATE = 8000


class FakeData(Dataset):
    """Synthetic 1-s clips generated in memory (tests only)."""

    name = "fake_data"

    class Config(BaseModel):
        n_train: int = Field(24, ge=0, description="training clips")
        n_val: int = Field(8, ge=0, description="validation clips")
        n_eval: int = Field(8, ge=0, description="evaluation clips")
        unlabelled_scene_every: int = Field(0, ge=0, description="every k-th clip has no scene label (0: none)")
        seed: int = Field(0, description="generator seed")
        stand_in: str | None = Field(None, description="pretend to serve substitute data (Dataset.stand_in)")

    def prepare(self) -> None:
        self.stand_in = getattr(self.config, "stand_in", None)  # FakeDisjoint has no such field

    def splits(self) -> list[str]:
        return ["train", "val", "eval"]

    def load(self, split: str) -> ClipList:
        count = {"train": self.config.n_train, "val": self.config.n_val, "eval": self.config.n_eval}[split]
        rng = np.random.default_rng(self.config.seed + {"train": 0, "val": 1, "eval": 2}[split])
        clips = []
        for i in range(count):
            scene = ["low", "high"][i % 2]
            events = []
            for label in ("beep", "buzz"):
                if rng.random() < 0.7:
                    onset = round(float(rng.uniform(0.0, 0.6)), 3)
                    events.append(Event(onset, round(onset + float(rng.uniform(0.15, 0.35)), 3), label))
            every = self.config.unlabelled_scene_every
            clips.append(
                Clip(
                    clip_id=f"{split}_{i:03d}",
                    path=f"memory://{split}/{i}",
                    start=0.0,
                    duration=1.0,
                    scene=None if every and i % every == 0 else scene,
                    events=tuple(events),
                )
            )
        return ClipList(clips, scene_labels=["high", "low"], event_labels=["beep", "buzz"])

    def audio(self, clip: Clip, sample_rate: int) -> np.ndarray:
        index = int(clip.clip_id.split("_")[1])
        rng = np.random.default_rng(hash(clip.clip_id) % 2**32 if False else index * 7 + len(clip.clip_id))
        t = np.arange(round(clip.duration * sample_rate)) / sample_rate
        scene_freq = 300.0 if index % 2 == 0 else 2500.0
        wave = 0.3 * np.sin(2 * np.pi * scene_freq * t) + 0.01 * rng.standard_normal(len(t))
        for event in clip.events or ():
            on = (t >= event.onset) & (t < event.offset)
            if event.label == "beep":
                wave[on] += 0.5 * np.sin(2 * np.pi * 1000.0 * t[on])
            else:
                wave[on] += 0.3 * rng.standard_normal(int(on.sum()))
        return wave.astype(np.float32)


class FakeFeatures(FeatureExtractor):
    """Log band energies of 50-ms frames (8 bands of an rfft), normalised with training statistics."""

    name = "fake_bands"

    class Config(BaseModel):
        bands: int = Field(8, ge=1, description="frequency bands")

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.sample_rate = SAMPLE_RATE
        self.hop = 400
        self.hop_seconds = self.hop / SAMPLE_RATE
        self.n_features = self.config.bands
        self.register_buffer("mean", torch.zeros(self.n_features))
        self.register_buffer("std", torch.ones(self.n_features))

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.hop

    def raw(self, waveform: torch.Tensor) -> torch.Tensor:
        frames = waveform[:, : self.num_frames(waveform.shape[1]) * self.hop].reshape(waveform.shape[0], -1, self.hop)
        spectrum = torch.fft.rfft(frames).abs()[..., 1:]
        bands = spectrum[..., : (spectrum.shape[-1] // self.n_features) * self.n_features]
        bands = bands.reshape(*bands.shape[:2], self.n_features, -1).mean(-1)
        return torch.log(bands + 1e-4)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return (self.raw(waveform) - self.mean) / self.std

    def fit_normalization(self, batches: Any) -> None:
        values = torch.cat([self.raw(batch).reshape(-1, self.n_features) for batch in batches])
        self.mean.copy_(values.mean(0))
        self.std.copy_(values.std(0) + 1e-5)


class FakeEncoder(Encoder):
    """One 3x3 conv, ReLU and dropout."""

    name = "fake_conv"

    class Config(BaseModel):
        channels: int = Field(8, ge=1, description="conv channels")
        dropout: float = Field(0.1, ge=0, lt=1, description="dropout (exercises the RNG on resume)")
        batch_norm: bool = Field(False, description="batch norm after the conv (running statistics)")

    def __init__(self, config: Any = None, *, n_features: int = 64) -> None:
        super().__init__(config, n_features=n_features)
        self.conv = torch.nn.Conv2d(1, self.config.channels, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(self.config.channels) if self.config.batch_norm else torch.nn.Identity()
        self.dropout = torch.nn.Dropout(self.config.dropout)
        self.out_channels, self.out_features, self.time_stride = self.config.channels, n_features, 1

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.relu(self.norm(self.conv(features.unsqueeze(1)))))


class FakeSceneHead(Head):
    """Mean over time and frequency, then a linear layer."""

    name = "fake_scene"
    tasks = ("scene",)

    class Config(BaseModel):
        pass

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.linear = torch.nn.Linear(self.in_channels * self.in_features, self.n_classes)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.linear(feature_map.mean(2).flatten(1))


class FakeEventHead(Head):
    """Per frame: channels x frequency -> linear layer."""

    name = "fake_event"
    tasks = ("event",)

    class Config(BaseModel):
        n_classes: int | None = Field(None, description="class count (None: from the data)")

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.linear = torch.nn.Linear(self.in_channels * self.in_features, self.n_classes)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        b, c, t, f = feature_map.shape
        return self.linear(feature_map.permute(0, 2, 1, 3).reshape(b, t, c * f))


class FakeClipEventHead(FakeEventHead):
    """Frame logits plus an attention-pooled clip output (DESED's CRNN shape), as logits."""

    name = "fake_event_clip"

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.attention = torch.nn.Linear(self.in_channels * self.in_features, self.n_classes)

    def forward(self, feature_map: torch.Tensor) -> dict[str, torch.Tensor]:
        b, c, t, f = feature_map.shape
        frames = feature_map.permute(0, 2, 1, 3).reshape(b, t, c * f)
        strong = self.linear(frames)
        weights = torch.softmax(self.attention(frames), dim=1)
        clip = (torch.sigmoid(strong) * weights).sum(1) / weights.sum(1)
        return {"frame": strong, "clip": torch.logit(clip.clamp(1e-7, 1 - 1e-7))}


class FakeDisjoint(FakeData):
    """Disjoint data as 003 uses it: 1-s scene-only clips, and 2-s event clips that are strong, weak or unlabelled."""

    name = "fake_disjoint"

    class Config(BaseModel):
        n_scene: int = Field(20, ge=0, description="scene-only clips per training split")
        n_strong: int = Field(12, ge=0, description="strongly labelled event clips")
        n_weak: int = Field(8, ge=0, description="weakly labelled event clips")
        n_unlabelled: int = Field(8, ge=0, description="unlabelled event clips")
        seed: int = Field(0, description="generator seed")

    def load(self, split: str) -> ClipList:
        cfg = self.config
        scale = 1 if split == "train" else 2  # val/eval: half as many
        rng = np.random.default_rng(cfg.seed + {"train": 0, "val": 1, "eval": 2}[split])
        clips = [Clip(f"{split}_{i:03d}", "memory://scene", 0.0, 1.0, scene=["low", "high"][i % 2])
                 for i in range(cfg.n_scene // scale)]
        parts = [("strong", cfg.n_strong // scale)]
        if split == "train":
            parts += [("weak", cfg.n_weak), ("unlabelled", cfg.n_unlabelled)]
        number = len(clips)
        for part, count in parts:
            for _ in range(count):
                events = []
                for label in ("beep", "buzz"):
                    if rng.random() < 0.7:
                        onset = round(float(rng.uniform(0.0, 1.4)), 3)
                        events.append(Event(onset, round(onset + float(rng.uniform(0.15, 0.5)), 3), label))
                clip = Clip(f"{split}_{number:03d}", f"memory://{part}", 0.0, 2.0,
                            events=tuple(events) if part == "strong" else None,
                            weak=tuple(sorted({e.label for e in events})) if part == "weak" else None)
                # The audio is drawn from the events, so a weak or unlabelled clip keeps them for audio() only.
                self._hidden[clip.clip_id] = tuple(events)
                clips.append(clip)
                number += 1
        return ClipList(clips, scene_labels=["high", "low"], event_labels=["beep", "buzz"])

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._hidden: dict[str, tuple] = {}

    def audio(self, clip: Clip, sample_rate: int) -> np.ndarray:
        import dataclasses

        return super().audio(dataclasses.replace(clip, events=self._hidden.get(clip.clip_id, ())), sample_rate)


class WrongSizeSceneHead(FakeSceneHead):
    """A scene head that ignores n_classes (outputs 5 classes)."""

    name = "fake_scene_5"

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.linear = torch.nn.Linear(self.in_channels * self.in_features, 5)


class NanAfter(Weighting):
    """Sum of losses; the event loss turns NaN from training step ``nan_step`` (0-based) on (tests the NaN guard)."""

    name = "nan_after"

    class Config(BaseModel):
        nan_step: int = Field(3, ge=0, description="first step with a NaN event loss")

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.calls = 0

    def task_losses(self, outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        losses = super().task_losses(outputs, targets)
        if not torch.is_grad_enabled():  # validation: leave alone, count training steps only
            return losses
        if self.calls >= self.config.nan_step and "event" in losses:
            losses["event"] = losses["event"] * float("nan")
        self.calls += 1
        return losses

    def combine(self, losses: Any, context: Any) -> torch.Tensor:
        return sum(losses.values())


class GradientMean(Weighting):
    """Averages per-task gradients of the shared parameters; records what the engine gave it."""

    name = "grad_mean"
    requires_task_gradients = True
    seen: list[dict[str, Any]] = []

    class Config(BaseModel):
        pass

    def combine(self, losses: Any, context: Any) -> torch.Tensor:
        # For a gradient scheme the engine uses combine only for the heads' gradients (each head sees its task's
        # weighted loss); the shared parameters get combine_gradients' result.
        return sum(losses.values())

    def combine_gradients(self, grads: Any, losses: Any, context: Any) -> list[torch.Tensor]:
        GradientMean.seen.append(
            {"tasks": sorted(grads), "shapes": [tuple(g.shape) for g in next(iter(grads.values()))],
             "n_shared": len(context.shared_parameters),
             "grads": {t: [g.detach().clone() for g in gs] for t, gs in grads.items()}}
        )
        n = len(grads)
        return [sum(parts) / n for parts in zip(*grads.values(), strict=True)]


class LearnedScale(Weighting):
    """exp(-s) * L + s per task with learnable s (uncertainty-like); tests the scheme's parameter group."""

    name = "learned_scale"

    class Config(BaseModel):
        pass

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.log_vars = {task: torch.nn.Parameter(torch.zeros(())) for task in ("scene", "event")}
        self.epoch_losses: list[dict[str, float]] = []

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.log_vars.values())

    def combine(self, losses: Any, context: Any) -> torch.Tensor:
        return sum(torch.exp(-self.log_vars[t]) * loss + self.log_vars[t] for t, loss in losses.items())

    def on_epoch_end(self, context: Any) -> None:
        self.epoch_losses.append(dict(context.train_losses))

    def effective_weights(self) -> dict[str, float]:
        return {t: float(torch.exp(-p.detach())) for t, p in self.log_vars.items()}

    def state_dict(self) -> dict[str, Any]:
        return {t: p.detach().clone() for t, p in self.log_vars.items()}

    def load_state_dict(self, state: Any) -> None:
        for t, value in state.items():
            self.log_vars[t].data.copy_(value)


class FakeTeacher(Schedule):
    """SoftMTL plus an EMA copy of the model and an MSE consistency loss on event frames (tests extra losses/models)."""

    name = "fake_teacher"

    class Config(BaseModel):
        decay: float = Field(0.9, ge=0, le=1, description="EMA decay")
        weight: float = Field(0.5, ge=0, description="consistency weight")

    def setup(self, model: Any, context: Any) -> None:
        self.teacher = copy.deepcopy(model).requires_grad_(False)

    def extra_losses(self, model: Any, features: Any, outputs: Any, batch: Any, context: Any) -> dict[str, torch.Tensor]:
        if "event" not in outputs:
            return {}
        with torch.no_grad():
            target = torch.sigmoid(self.teacher(features)["event"])
        return {"consistency": self.config.weight * torch.mean((torch.sigmoid(outputs["event"]) - target) ** 2)}

    def after_step(self, model: Any, context: Any) -> None:
        with torch.no_grad():
            for mine, theirs in zip(self.teacher.state_dict().values(), model.state_dict().values(), strict=True):
                if mine.dtype.is_floating_point:
                    mine.mul_(self.config.decay).add_(theirs, alpha=1 - self.config.decay)
                else:
                    mine.copy_(theirs)

    def extra_models(self) -> dict[str, Any]:
        return {"teacher": self.teacher}


COMPONENTS = (FakeData, FakeDisjoint, FakeFeatures, FakeEncoder, FakeSceneHead, FakeEventHead, FakeClipEventHead,
              WrongSizeSceneHead, NanAfter, GradientMean, LearnedScale, FakeTeacher)


@hookimpl
def jasc_register_components(register: Any) -> None:
    for cls in COMPONENTS:
        register(cls)


BASE_RECIPE: dict[str, Any] = {
    "seed": 3,
    "data": {"name": "fake_data"},
    "features": {"name": "fake_bands"},
    "model": {"encoder": {"name": "fake_conv"},
              "heads": {"scene": {"name": "fake_scene"}, "event": {"name": "fake_event"}}},
    "weighting": {"name": "constant", "alpha": 1.0, "beta": 1.0},
    "schedule": {"name": "soft"},
    "train": {"epochs": 2, "batch_size": 8, "optimizer": {"name": "adam", "lr": 0.01}, "deterministic": True,
              "device": "cpu"},
    "evaluate": {"split": "eval", "threshold": 0.5},
    "output": {"dir": "runs"},
}


def recipe_data(**overrides: Any) -> dict[str, Any]:
    """BASE_RECIPE with dotted-path overrides (``{"train.epochs": 3}``)."""
    data = copy.deepcopy(BASE_RECIPE)
    for path, value in overrides.items():
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return data


def make_recipe(**overrides: Any) -> Any:
    from jasc_core.recipes.model import validate_recipe

    return validate_recipe(recipe_data(**overrides))


def interrupted_run(monkeypatch: Any, out: Any, overrides: dict[str, Any], *, epoch: int, step: int = 1) -> Any:
    """``make_recipe(**overrides)`` run into ``out`` and stopped by a KeyboardInterrupt at batch ``step`` of 0-based
    ``epoch``: it stands in for SIGKILL (nothing after it runs; the last epoch-end checkpoint is what is left)."""
    import pytest

    from jasc_core import training

    original = training.Trainer.train_step

    def crash(self: Any, step_input: Any, current: int) -> Any:
        if current == epoch and self.epoch_step == step:
            raise KeyboardInterrupt
        return original(self, step_input, current)

    monkeypatch.setattr(training.Trainer, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        training.run_recipe(make_recipe(**overrides), recipe_path="fake.yaml", out_dir=out)
    monkeypatch.setattr(training.Trainer, "train_step", original)
    return out


def resumed(out: Any, overrides: dict[str, Any]) -> Any:
    """``jasc run --resume out`` with the same recipe."""
    from jasc_core import training

    return training.run_recipe(make_recipe(**overrides), recipe_path="fake.yaml", resume=out)


def checkpoint_epoch(last: Any) -> int:
    """The epoch of the checkpoint at ``last`` (-1 while there is none or it is being replaced) for tests that wait
    for an epoch end before killing a run."""
    from pathlib import Path

    from jasc_core.runs.checkpoints import load_checkpoint

    try:
        return int(load_checkpoint(last).epoch) if Path(last).exists() else -1
    except Exception:  # noqa: BLE001 - being replaced this instant (atomic rename): look again
        return -1


def final_results(run_dir: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A run's history without timings and its eval metrics: what an interrupted, resumed run must reproduce."""
    import json
    from pathlib import Path

    history = json.loads((Path(run_dir) / "history.json").read_text())
    keep = [{k: v for k, v in r.items() if k not in ("time", "train_clips_per_s")} for r in history]
    return keep, json.loads((Path(run_dir) / "metrics.json").read_text())["eval"]
