"""Threshold optimisers: the surrogate gradient, the exact coordinate search, and every method's contract."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jasc_core import component
from jasc_thresholds import OPTIMIZERS
from jasc_thresholds.coordinate import class_cuts, coordinate_ascent
from jasc_thresholds.metrics import thresholded_f1
from jasc_thresholds.sgl import soft_f1, surrogate_step
from jasc_thresholds.tuning import tune


def synthetic(n: int = 200, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores that carry signal about the targets, with class-dependent calibration."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, classes)) < 0.3).astype(np.float32)
    logits = 2.0 * targets - 1.0 + rng.normal(0, 1.2, (n, classes)) - np.linspace(0, 1.5, classes)
    return (1 / (1 + np.exp(-logits))).astype(np.float32), targets


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda cls: cls.name)
def test_conformance(cls):
    from jasc_core.testing import check_component

    check_component(cls)


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda cls: cls.name)
@pytest.mark.parametrize("metric", ["micro", "macro"])
def test_every_method_returns_float64_thresholds_and_does_not_lose_f1(cls, metric):
    scores, targets = synthetic()
    options = {"metric": metric}
    if cls.name == "search":
        options.update(restarts=2, iterations=50)
    thresholds = cls(options).fit(scores, targets)
    assert thresholds.dtype == np.float64 and thresholds.shape == (4,)
    start = thresholded_f1(scores, targets, 0.5, metric)
    tuned = thresholded_f1(scores, targets, thresholds, metric)
    if cls.name == "fixed":
        np.testing.assert_array_equal(thresholds, 0.5)
    elif cls.name in ("search", "coordinate"):
        assert tuned >= start  # both only ever accept improvements
    else:
        assert tuned > start - 0.02  # gradient methods may wobble, never collapse


def test_methods_are_registered_and_tune_by_name():
    assert component("thresholds", "sgl").name == "sgl"
    scores, targets = synthetic()
    np.testing.assert_array_equal(tune(scores, targets, "fixed", init=0.3), 0.3)
    with pytest.raises(ValueError, match="must both be"):
        tune(scores, targets[:, :2], "coordinate")


def test_surrogate_gradient_matches_finite_differences_of_sigmoid_relaxation():
    # For a loss linear in the decisions, the surrogate backward equals the exact gradient of the same loss on the
    # relaxed decisions sigmoid(sigma * (s - theta)) (002's surrogate); check it against central differences.
    rng = np.random.default_rng(1)
    s = torch.tensor(rng.random((30, 3)), dtype=torch.float64)
    w = torch.tensor(rng.normal(size=(30, 3)), dtype=torch.float64)
    theta = torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([5.0, 10.0, 20.0], dtype=torch.float64, requires_grad=True)
    (w * surrogate_step(s - theta, sigma)).sum().backward()

    def relaxed(theta_, sigma_):
        return float((w * torch.sigmoid(sigma_ * (s - theta_))).sum())

    h = 1e-6
    for k in range(3):
        step = torch.zeros(3, dtype=torch.float64)
        step[k] = h
        with torch.no_grad():
            d_theta = (relaxed(theta + step, sigma) - relaxed(theta - step, sigma)) / (2 * h)
            d_sigma = (relaxed(theta, sigma + step) - relaxed(theta, sigma - step)) / (2 * h)
        assert theta.grad[k].item() == pytest.approx(d_theta, rel=1e-5, abs=1e-8)
        assert sigma.grad[k].item() == pytest.approx(d_sigma, rel=1e-5, abs=1e-8)


def test_surrogate_forward_is_the_hard_step_and_soft_f1_is_exact_on_it():
    s = torch.tensor([[0.2, 0.5], [0.6, 0.5], [0.9, 0.1]], dtype=torch.float64)
    y = torch.tensor([[0, 1], [1, 1], [1, 0]], dtype=torch.float64)
    decisions = surrogate_step(s - 0.5, torch.full((2,), 50.0, dtype=torch.float64))
    np.testing.assert_array_equal(decisions.numpy(), (s > 0.5).numpy())  # 0.5 is not above 0.5
    assert soft_f1(decisions, y).item() == pytest.approx(thresholded_f1(s.numpy(), y.numpy(), 0.5))
    assert soft_f1(decisions, y, "macro").item() == pytest.approx(thresholded_f1(s.numpy(), y.numpy(), 0.5, "macro"))


def candidates(column: np.ndarray) -> np.ndarray:
    """Thresholds that realise every distinct decision set of one class."""
    return np.concatenate([[column.min() - 1.0], np.unique(column)])


tiny = st.integers(1, 7).flatmap(
    lambda n: st.tuples(
        st.lists(st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.7, 0.9]), min_size=2, max_size=2), min_size=n,
                 max_size=n),
        st.lists(st.lists(st.integers(0, 1), min_size=2, max_size=2), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(tiny, st.sampled_from([0.05, 0.4, 0.95]))
def test_coordinate_is_exact_per_coordinate_and_global_for_macro(data, init):
    scores, targets = np.array(data[0], dtype=np.float64), np.array(data[1], dtype=bool)
    for metric in ("micro", "macro"):
        found = coordinate_ascent(scores, targets, np.full(2, init), metric)
        best = thresholded_f1(scores, targets, found, metric)
        assert best >= thresholded_f1(scores, targets, init, metric) - 1e-12
        # brute force over each coordinate with the other fixed: no single move improves (a coordinate optimum)
        for k in range(2):
            for value in candidates(scores[:, k]):
                moved = found.copy()
                moved[k] = value
                assert thresholded_f1(scores, targets, moved, metric) <= best + 1e-12
        if metric == "macro":  # macro-F1 separates over classes: the coordinate optimum is the global one
            grid = itertools.product(candidates(scores[:, 0]), candidates(scores[:, 1]))
            assert best == pytest.approx(max(thresholded_f1(scores, targets, np.array(t), "macro") for t in grid))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.integers(0, 1)), min_size=1, max_size=9))
def test_class_cuts_count_what_thresholds_detect(rows):
    scores = np.array([r[0] for r in rows])
    targets = np.array([r[1] for r in rows], dtype=bool)
    cuts = class_cuts(scores, targets)
    for threshold, tp, fp in zip(cuts.thresholds, cuts.tp, cuts.fp, strict=True):
        detected = scores > threshold
        assert tp == np.count_nonzero(detected & targets) and fp == np.count_nonzero(detected & ~targets)
    assert len(cuts.thresholds) == len(np.unique(scores)) + 1  # every distinct decision set, once
    for value in np.unique(scores):
        assert cuts.tp[cuts.index_of(value)] == np.count_nonzero((scores > value) & targets)


def test_sgl_config_fields_act():
    scores, targets = synthetic()
    frozen = component("thresholds", "sgl")({"epochs": 1, "lr": 1e-9, "theta_init": 0.3}).fit(scores, targets)
    np.testing.assert_allclose(frozen, 0.3, atol=1e-6)
    learned = component("thresholds", "sgl")({"theta_init": 0.3, "learn_sigma": False}).fit(scores, targets)
    assert np.abs(learned - 0.3).max() > 0.01


def test_cv_select_prefers_the_candidate_that_generalises_and_reports_its_choice():
    scores, targets = synthetic(n=300)
    scores = scores * 0.4  # every score below 0.4: a fixed 0.5 detects nothing, a tuned search does well
    selector = component("thresholds", "cv_select")(
        {"candidates": [{"name": "fixed"}, {"name": "coordinate"}], "folds": 3, "repeats": 1}
    )
    thresholds = selector.fit(scores, targets)
    assert selector.chosen == {"name": "coordinate"}
    assert selector.cv_f1[1] > selector.cv_f1[0] == 0.0
    np.testing.assert_array_equal(thresholds, component("thresholds", "coordinate")().fit(scores, targets))


def test_cv_select_rejects_bad_candidates():
    from jasc_core.errors import ConfigError, PluginError

    with pytest.raises(ConfigError, match="needs a 'name'"):
        component("thresholds", "cv_select")({"candidates": [{"value": 0.3}]})
    with pytest.raises(ConfigError, match="cannot choose among cv_select"):
        component("thresholds", "cv_select")({"candidates": [{"name": "cv_select"}]})
    with pytest.raises(PluginError):
        component("thresholds", "cv_select")({"candidates": [{"name": "no_such_method"}]})
    with pytest.raises(ConfigError):
        component("thresholds", "cv_select")({"candidates": [{"name": "sgl", "epochs": 0}]})


@pytest.mark.gpu
def test_sgl_runs_on_cuda_like_on_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    scores, targets = synthetic()
    on_cpu = component("thresholds", "sgl")().fit(scores, targets)
    on_gpu = component("thresholds", "sgl")({"device": "cuda"}).fit(scores, targets)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-3)
