"""The loop's contexts: attribute access is the contract; dict-style access still answers, with a DeprecationWarning."""

from __future__ import annotations

import warnings

import pytest
import torch
from loop_contexts import epoch_context, step_context

from jasc_core import SetupContext


def test_dict_style_access_answers_with_a_warning_naming_the_attribute():
    context = step_context(7, 2, seed=3)
    with pytest.warns(DeprecationWarning, match=r"context\['seed'\]: contexts are jasc_core\.StepContext objects; "
                                                r"read context\.seed"):
        assert context["seed"] == 3
    with pytest.warns(DeprecationWarning, match=r"read context\.step\b"):
        assert context.get("step") == 7
    epoch = epoch_context(1, 10, {"scene": 0.5})
    with pytest.warns(DeprecationWarning, match=r"jasc_core\.EpochContext objects; read context\.train_losses"):
        assert epoch.get("train_losses") == {"scene": 0.5}
    setup = SetupContext(epochs=3, tasks=("scene",), streams={}, device=torch.device("cpu"), seed=0)
    with pytest.warns(DeprecationWarning, match=r"read context\.epochs"):
        assert setup["epochs"] == 3


def test_dict_style_access_of_an_unknown_key_names_the_fields():
    context = epoch_context()
    with pytest.warns(DeprecationWarning, match=r"no field 'loss' \(fields: epoch, step, phase, train_losses\)"):
        assert context.get("loss", 1.5) == 1.5
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError, match="loss"):
        context["loss"]


def test_attribute_access_and_membership_do_not_warn():
    context = step_context(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert context.step == 1 and context.seed == 0
        assert "seed" in context and "loss" not in context


def test_jascs_own_tests_fail_on_dict_style_access():
    """pyproject's filterwarnings turns the warning into an error in this test session, so a built-in plugin (or the
    core) that still indexes a context or a batch fails its tests instead of warning."""
    with pytest.raises(DeprecationWarning, match=r"read context\.epoch"):
        step_context()["epoch"]
