"""Dynamic weight average against its formula on given loss histories, and MFL + DWA."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from loop_contexts import epoch_context, step_context

from jasc_core import component
from jasc_weighting import dwa_weights


def by_hand(previous: dict[str, float], before: dict[str, float], temperature: float) -> dict[str, float]:
    """lambda_k = K exp(w_k / T) / sum_i exp(w_i / T), w_k = L_k(t-1) / L_k(t-2) (DESIGN.md)."""
    w = {k: previous[k] / before[k] for k in previous}
    denominator = sum(math.exp(v / temperature) for v in w.values())
    return {k: len(w) * math.exp(v / temperature) / denominator for k, v in w.items()}


def run_epoch(weighting, losses_per_step: list[dict[str, float]], epoch: int, context_losses=None):
    """Feed one epoch of unweighted losses through combine, then end the epoch; returns the combined losses."""
    combined = []
    for step, values in enumerate(losses_per_step):
        losses = {task: torch.tensor(value, requires_grad=True) for task, value in values.items()}
        combined.append(weighting.combine(losses, step_context(step, epoch)).item())
    weighting.on_epoch_end(epoch_context(epoch, train_losses=context_losses))
    return combined


HISTORY = [{"scene": 1.2, "event": 0.7}, {"scene": 0.9, "event": 0.65}, {"scene": 0.5, "event": 0.6}]


def test_dwa_formula_on_history():
    assert dwa_weights(HISTORY[:1], ["scene", "event"]) == {"scene": 1.0, "event": 1.0}
    for t in (2, 3):
        expected = by_hand(HISTORY[t - 1], HISTORY[t - 2], 2.0)
        got = dwa_weights(HISTORY[:t], ["scene", "event"], 2.0)
        for task in expected:
            assert got[task] == pytest.approx(expected[task], abs=1e-12)
    # The task whose loss fell faster gets the smaller weight.
    assert got["scene"] < 1.0 < got["event"]


def test_dwa_component_follows_the_formula_epoch_by_epoch():
    weighting = component("weighting", "dwa")({"alpha": 0.1, "beta": 1.0})
    for epoch, means in enumerate(HISTORY):
        # Two steps per epoch whose mean is the epoch mean; the second step lacks the event labels.
        steps = [{"scene": means["scene"] - 0.1, "event": means["event"]}, {"scene": means["scene"] + 0.1}]
        lam = {"scene": 1.0, "event": 1.0} if epoch < 2 else by_hand(HISTORY[epoch - 1], HISTORY[epoch - 2], 2.0)
        combined = run_epoch(weighting, steps, epoch)
        expected_first = 0.1 * lam["scene"] * steps[0]["scene"] + 1.0 * lam["event"] * steps[0]["event"]
        assert combined[0] == pytest.approx(expected_first, rel=1e-6)
        # A batch lacking a task: the remaining lambda renormalised to 1, times its base weight.
        assert combined[1] == pytest.approx(0.1 * steps[1]["scene"], rel=1e-6)
        # Between epochs the weights of the epoch just trained are reported.
        assert weighting.effective_weights() == pytest.approx({"scene": 0.1 * lam["scene"], "event": lam["event"]})
    assert weighting.history == [pytest.approx(h) for h in HISTORY]


def test_dwa_prefers_the_engines_epoch_means_and_survives_an_epoch_without_a_task():
    weighting = component("weighting", "dwa")({})
    run_epoch(weighting, [{"scene": 1.0, "event": 1.0}], 0, context_losses={"scene": 2.0, "event": 1.0})
    assert weighting.history[-1] == {"scene": 2.0, "event": 1.0}
    # Epoch 1 has no event batch at all (and the engine reports none): the event ratio falls back to 1.
    run_epoch(weighting, [{"scene": 1.0}], 1)
    assert weighting.history[-1] == {"scene": 1.0}
    lam = weighting.lambdas()
    expected = by_hand({"scene": 1.0, "event": 1.0}, {"scene": 2.0, "event": 1.0}, 2.0)
    assert lam == pytest.approx(expected)
    assert all(math.isfinite(v) for v in lam.values())


def test_dwa_resumes_from_state_dict():
    weighting = component("weighting", "dwa")({"temperature": 1.5})
    for epoch, means in enumerate(HISTORY):
        run_epoch(weighting, [means], epoch)
    restored = component("weighting", "dwa")({"temperature": 1.5})
    restored.load_state_dict(weighting.state_dict())
    assert restored.lambdas() == pytest.approx(weighting.lambdas())
    losses = {"scene": torch.tensor(0.4), "event": torch.tensor(0.5)}
    assert restored.combine(losses, step_context()).item() == pytest.approx(weighting.combine(losses, step_context()).item())


@settings(max_examples=50, deadline=None)
@given(
    history=st.lists(
        st.fixed_dictionaries({"scene": st.floats(0.05, 10), "event": st.floats(0.05, 10)}), min_size=2, max_size=5
    ),
    temperature=st.floats(1, 5),
)
def test_dwa_weights_sum_to_k_and_match_formula(history, temperature):
    got = dwa_weights(history, ["scene", "event"], temperature)
    assert sum(got.values()) == pytest.approx(2.0)
    assert got == pytest.approx(by_hand(history[-1], history[-2], temperature), rel=1e-9)


def test_mfl_dwa_is_focal_losses_times_dwa_weights():
    weighting = component("weighting", "mfl_dwa")({"alpha": 0.5, "beta": 1.0})
    focal = component("weighting", "mfl")({"alpha": 0.5, "beta": 1.0})
    outputs = {"scene": torch.tensor([[2.0, -1.0, 0.0]]), "event": torch.tensor([[[1.0, -2.0], [0.5, 3.0]]])}
    targets = {"scene": torch.tensor([1]), "event": torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])}
    losses = weighting.task_losses(outputs, targets)
    reference = focal.task_losses(outputs, targets)
    assert {k: v.item() for k, v in losses.items()} == pytest.approx({k: v.item() for k, v in reference.items()})
    for epoch, means in enumerate(HISTORY):
        run_epoch(weighting, [means], epoch)
    lam = by_hand(HISTORY[2], HISTORY[1], 2.0)
    expected = 0.5 * lam["scene"] * losses["scene"].item() + lam["event"] * losses["event"].item()
    assert weighting.combine(losses, step_context()).item() == pytest.approx(expected, rel=1e-6)
    restored = component("weighting", "mfl_dwa")({"alpha": 0.5})
    restored.load_state_dict(weighting.state_dict())
    assert restored.effective_weights() == pytest.approx(weighting.effective_weights())
