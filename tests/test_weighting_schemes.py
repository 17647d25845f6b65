"""Every weighting scheme: conformance, batches lacking a task, a few training steps, and scheme specifics."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from loop_contexts import epoch_context, step_context
from torch import nn

from jasc_core import component
from jasc_core.testing import check_component

SCHEMES = ["constant", "mfl", "dwa", "mfl_dwa", "uncertainty", "gradnorm", "pcgrad", "rlw"]


class TinyJointModel(nn.Module):
    """A shared layer on frame features, a scene head on the time-mean, an event head per frame."""

    def __init__(self, n_in: int = 6, hidden: int = 16, n_scenes: int = 3, n_events: int = 2) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.scene = nn.Linear(hidden, n_scenes)
        self.event = nn.Linear(hidden, n_events)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.shared(x)  # [B, T, H]
        return {"scene": self.scene(h.mean(1)), "event": self.event(h)}


def toy_data(seed: int = 0, batch: int = 16, frames: int = 5):
    """Learnable targets: a fixed random teacher labels random inputs."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, frames, 6, generator=generator)
    scene = (x.mean(1) @ torch.randn(6, 3, generator=generator)).argmax(-1)
    event = (x @ torch.randn(6, 2, generator=generator) > 0.3).float()
    return x, {"scene": scene, "event": event}


def plain_loss(outputs, targets) -> float:
    """Unweighted cross-entropy + binary cross-entropy: the yardstick every scheme should lower."""
    ce = nn.functional.cross_entropy(outputs["scene"], targets["scene"])
    bce = nn.functional.binary_cross_entropy_with_logits(outputs["event"], targets["event"])
    return float(ce + bce)


def train_step(weighting, model, optimizer, x, targets, context) -> float:
    """One step the way the engine does it: task losses, combine, per-task shared gradients when asked for."""
    outputs = model(x)
    losses = weighting.task_losses(outputs, targets)
    loss = weighting.combine(losses, context)
    shared = list(model.shared.parameters())
    combined = None
    if weighting.requires_task_gradients:
        grads = {
            task: list(torch.autograd.grad(value, shared, retain_graph=True, allow_unused=True))
            for task, value in losses.items()
        }
        combined = weighting.combine_gradients(grads, losses, replace(context, shared_parameters=tuple(shared)))
    optimizer.zero_grad()
    loss.backward()
    if combined is not None:
        for param, grad in zip(shared, combined, strict=True):
            param.grad = grad
    optimizer.step()
    return float(loss.detach())


def make_optimizer(model, weighting):
    groups = [{"params": list(model.parameters())}]
    if weighting.parameters():
        groups.append({"params": weighting.parameters(), "weight_decay": 0.0})
    return torch.optim.Adam(groups, lr=0.02)


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_conforms(name):
    check_component(component("weighting", name))


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme_trains_a_tiny_model(name):
    torch.manual_seed(0)
    weighting = component("weighting", name)({"alpha": 1.0} if name in ("mfl", "mfl_dwa") else {})
    model = TinyJointModel()
    optimizer = make_optimizer(model, weighting)
    x, targets = toy_data()
    with torch.no_grad():
        before = plain_loss(model(x), targets)
    step = 0
    for epoch in range(6):
        epoch_losses: dict[str, list[float]] = {}
        for _ in range(5):
            loss = train_step(weighting, model, optimizer, x, targets, step_context(step, epoch, model=model))
            assert math.isfinite(loss)
            with torch.no_grad():
                for task, value in weighting.task_losses(model(x), targets).items():
                    epoch_losses.setdefault(task, []).append(float(value))
            step += 1
        weighting.on_epoch_end(epoch_context(epoch, step, {k: sum(v) / len(v) for k, v in epoch_losses.items()}))
        weights = weighting.effective_weights()
        assert weights and all(math.isfinite(w) and w >= 0 for w in weights.values())
    with torch.no_grad():
        after = plain_loss(model(x), targets)
    assert after < 0.8 * before
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # What the scheme saves restores into a fresh instance of the same config.
    fresh = component("weighting", name)(weighting.config)
    fresh.load_state_dict(weighting.state_dict())
    assert fresh.effective_weights() == pytest.approx(weighting.effective_weights())


def _scene_only_expected(name: str, weighting, loss: float) -> float:
    """What combine must return for a batch that has only scene labels: the scene term alone, renormalised."""
    if name == "uncertainty":
        s = float(weighting.log_vars["scene"].detach())
        return math.exp(-s) * weighting.config.alpha * loss + s
    if name in ("mfl", "mfl_dwa"):
        return weighting.config.alpha * loss  # DWA's lambda renormalised over one task is 1
    return weighting.config.alpha * loss  # constant, dwa, rlw (lambda 1), pcgrad; gradnorm's initial weight


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("present", ["scene", "event"])
def test_scheme_on_a_batch_lacking_a_task(name, present):
    torch.manual_seed(1)
    weighting = component("weighting", name)({"alpha": 0.5, "beta": 2.0})
    model = TinyJointModel()
    x, targets = toy_data()
    # A few joint steps and epochs first, so DWA's lambda and GradNorm's w have moved away from 1.
    optimizer = make_optimizer(model, weighting)
    for epoch in range(3):
        for step in range(2):
            train_step(weighting, model, optimizer, x, targets, step_context(2 * epoch + step, epoch))
        weighting.on_epoch_end(epoch_context(epoch))
    outputs = model(x)
    losses = weighting.task_losses(outputs, {present: targets[present]})
    assert set(losses) == {present}
    total = weighting.combine(losses, step_context(99, 3))
    assert total.dim() == 0 and torch.isfinite(total)
    loss = float(losses[present].detach())
    if present == "scene":
        expected = _scene_only_expected(name, weighting, loss)
    else:
        expected = (
            math.exp(-float(weighting.log_vars["event"].detach())) * 2.0 * loss + float(weighting.log_vars["event"].detach())
            if name == "uncertainty"
            else 2.0 * loss
        )
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    if weighting.requires_task_gradients:
        shared = list(model.shared.parameters())
        grads = {present: list(torch.autograd.grad(losses[present], shared, retain_graph=True))}
        combined = weighting.combine_gradients(grads, losses, step_context(99, 3, shared_parameters=shared))
        scale = weighting.config.alpha if present == "scene" else weighting.config.beta
        for got, grad in zip(combined, grads[present], strict=True):
            torch.testing.assert_close(got, scale * grad)
    total.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_pcgrad_removes_the_conflicting_component():
    weighting = component("weighting", "pcgrad")({})
    like = [torch.zeros(2)]
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    combined = weighting.combine_gradients({"scene": [g1], "event": [g2]}, {}, step_context(shared_parameters=like))[0]
    # g1' = g1 - (g1.g2)/|g2|^2 g2 = [0.5, 0.5]; g2' = g2 - (g2.g1)/|g1|^2 g1 = [0, 1].
    torch.testing.assert_close(combined, torch.tensor([0.5, 1.5]))
    assert weighting.conflicts == 1
    # No conflict: the plain sum.
    agreeing = weighting.combine_gradients(
        {"scene": [g1], "event": [torch.tensor([1.0, 1.0])]}, {}, step_context(shared_parameters=like)
    )[0]
    torch.testing.assert_close(agreeing, torch.tensor([2.0, 1.0]))


def test_gradnorm_moves_weight_to_the_task_with_the_smaller_gradient():
    weighting = component("weighting", "gradnorm")({"lr": 0.05, "asymmetry": 0.0})
    like = [torch.zeros(3, 2)]
    grads = {"scene": [torch.full((3, 2), 0.1)], "event": [torch.full((3, 2), 1.0)]}
    losses = {"scene": torch.tensor(1.0), "event": torch.tensor(1.0)}
    for step in range(20):
        weighting.combine_gradients(grads, losses, step_context(step, shared_parameters=like))
    assert weighting.effective_weights()["scene"] < weighting.weights()["scene"]  # the epoch mean lags behind
    w = weighting.weights()
    assert w["scene"] > 1.2 > 0.8 > w["event"]
    assert w["scene"] + w["event"] == pytest.approx(2.0)
    combined = weighting.combine_gradients(grads, losses, step_context(20, shared_parameters=like))[0]
    torch.testing.assert_close(combined, w["scene"] * grads["scene"][0] + w["event"] * grads["event"][0])


def test_gradnorm_uses_the_last_shared_layer_weight():
    from jasc_weighting.gradnorm import last_layer_indices

    like = [torch.zeros(4, 3), torch.zeros(4), torch.zeros(2, 4), torch.zeros(2), torch.zeros(2)]
    assert last_layer_indices(like) == [2]


def test_rlw_is_seeded_by_step_and_renormalises():
    a = component("weighting", "rlw")({})
    b = component("weighting", "rlw")({})
    losses = {"scene": torch.tensor(1.0), "event": torch.tensor(1.0)}
    first = [float(a.combine(losses, step_context(s, seed=3))) for s in range(5)]
    again = [float(b.combine(losses, step_context(s, seed=3))) for s in range(5)]
    assert first == again
    assert all(v == pytest.approx(2.0) for v in first)  # lambdas sum to K = 2
    other = component("weighting", "rlw")({})
    weights = []
    for s in range(5):
        other.combine({"scene": torch.tensor(1.0), "event": torch.tensor(0.0)}, step_context(s, seed=3))
        weights.append(other.effective_weights()["scene"])
    assert len(set(weights)) > 1  # the running mean moves: weights differ step to step


def test_uncertainty_exposes_its_log_variances():
    weighting = component("weighting", "uncertainty")({"init": 0.5})
    params = weighting.parameters()
    assert len(params) == 2 and all(isinstance(p, nn.Parameter) for p in params)
    losses = {"scene": torch.tensor(2.0), "event": torch.tensor(3.0)}
    total = weighting.combine(losses, step_context())
    assert float(total.detach()) == pytest.approx(math.exp(-0.5) * 5.0 + 1.0)
    total.backward()
    # d/ds [exp(-s) L + s] = 1 - exp(-s) L
    assert float(weighting.log_vars["scene"].grad) == pytest.approx(1 - math.exp(-0.5) * 2.0)
    assert weighting.effective_weights()["event"] == pytest.approx(math.exp(-0.5))


def _recipe(heads: dict, schedule: str | None):
    return SimpleNamespace(
        model=SimpleNamespace(heads=heads), schedule=SimpleNamespace(name=schedule) if schedule else None
    )


@pytest.mark.parametrize("name", ["gradnorm", "pcgrad"])
def test_gradient_schemes_reject_single_head_models(name):
    cls = component("weighting", name)
    block = cls.Config()
    assert cls.check_recipe(block, _recipe({"scene": object(), "event": object()}, None)) == []
    problems = cls.check_recipe(block, _recipe({"scene": object(), "event": None}, None))
    assert len(problems) == 1 and "only scene head" in problems[0]


def test_gradient_schemes_reject_single_task_schedules(monkeypatch):
    import jasc_weighting.constraints as constraints

    class Alternating:
        trains_tasks_jointly = False

    monkeypatch.setattr(constraints, "component", lambda kind, name: Alternating)
    cls = component("weighting", "pcgrad")
    problems = cls.check_recipe(cls.Config(), _recipe({"scene": object(), "event": object()}, "alternate"))
    assert len(problems) == 1 and "schedule 'alternate'" in problems[0]
    assert component("weighting", "dwa").check_recipe(cls.Config(), _recipe({"scene": object()}, "alternate")) == []
