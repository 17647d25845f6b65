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
