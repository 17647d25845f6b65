"""The plugin's own tests: jasc's conformance kit plus the behaviour of the scheme."""

import torch
from jasc_geometric import GeometricLoss

from jasc_core.testing import check_component


def test_conforms():
    check_component(GeometricLoss, {"eps": 1e-6})


def test_geometric_mean_and_missing_task():
    weighting = GeometricLoss()
    losses = {"scene": torch.tensor(4.0), "event": torch.tensor(1.0)}
    assert torch.isclose(weighting.combine(losses, {}), torch.tensor(2.0))
    assert torch.isclose(weighting.combine({"event": torch.tensor(3.0)}, {}), torch.tensor(3.0))


def test_effective_weights_are_the_epoch_mean_of_the_implicit_weights():
    weighting = GeometricLoss()
    weighting.train()
    # L = sqrt(4 * 1) = 2: weights L / (2 L_k) = 0.25 (scene) and 1.0 (event); then L = 3 on events alone: 1.0.
    weighting.combine({"scene": torch.tensor(4.0), "event": torch.tensor(1.0)}, {})
    weighting.combine({"event": torch.tensor(3.0)}, {})
    weighting.on_epoch_end(None)
    weights = weighting.effective_weights()
    assert abs(weights["scene"] - 0.25) < 1e-6 and abs(weights["event"] - 1.0) < 1e-6
    weighting.eval()
    weighting.combine({"scene": torch.tensor(9.0)}, {})  # validation steps are not recorded
    weighting.on_epoch_end(None)
    assert weighting.effective_weights() == {}
