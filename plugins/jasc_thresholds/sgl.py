"""``sgl``: SGL-Thresh, surrogate gradient learning of thresholds (002, Pellegrini 2021).

Each class k has a threshold theta_k and a slope sigma_k. The forward pass makes the hard decisions of evaluation,
``d = H(s - theta)`` (H the unit step, ``s > theta``), so the loss is the exact -F1 of those decisions. H has a zero
gradient almost everywhere, so the backward pass replaces dH/dx by the derivative of the sigmoid of slope sigma
(002 Sec. 2): ``dd/dx = sigma * S(sigma x) * S(-sigma x)`` and ``dd/dsigma = x * S(sigma x) * S(-sigma x)``, with
``x = s - theta``. Both theta and sigma are learned with Adam on the whole tuning set (one batch) per epoch.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from jasc_thresholds.base import F1Optimizer, MetricConfig


class SurrogateStep(torch.autograd.Function):
    """Heaviside step ``x > 0`` forward; the sigmoid-of-slope-sigma derivative backward (002's surrogate gradient)."""

    @staticmethod
    def forward(ctx, x: Tensor, sigma: Tensor) -> Tensor:
        ctx.save_for_backward(x, sigma)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, Tensor]:
        x, sigma = ctx.saved_tensors
        s = torch.sigmoid(sigma * x)
        weighted = grad_output * s * (1 - s)  # S(sigma x) * S(-sigma x) = S * (1 - S): one sigmoid, not two
        grad_x = weighted * sigma
        # sigma is broadcast over the leading (row) dimensions of x; its gradient sums over them.
        grad_sigma = (weighted * x).reshape(-1, x.shape[-1]).sum(0).reshape(sigma.shape)
        return grad_x, grad_sigma


surrogate_step = SurrogateStep.apply


def soft_f1(decisions: Tensor, targets: Tensor, metric: str = "micro", eps: float = 1e-12) -> Tensor:
    """F1 of (possibly relaxed) decisions ``[n, classes]``: ``2TP / (predicted + actual positives)``, micro or macro."""
    tp = (decisions * targets).sum(0)
    predicted = decisions.sum(0)
    actual = targets.sum(0)
    if metric == "micro":
        return 2 * tp.sum() / (predicted.sum() + actual.sum() + eps)
    return (2 * tp / (predicted + actual + eps)).mean()


class Adam:
    """Adam (Kingma & Ba) with torch.optim.Adam's defaults, in a few tensor operations.

    torch.optim.Adam imports torch._dynamo on its first step, about two seconds on a small CPU: longer than the whole
    tuning. The update is the textbook one, so results match torch.optim.Adam.
    """

    def __init__(self, params: list[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads: tuple[Tensor, ...]) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denominator = (v / (1 - beta2**self.t)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denominator, value=-self.lr / (1 - beta1**self.t))


class SGLThresh(F1Optimizer):
    """SGL-Thresh: per-class thresholds learned through a surrogate gradient of the step (002)."""

    name = "sgl"

    class Config(MetricConfig):
        theta_init: float = Field(0.5, description="initial threshold theta of every class (002: 0.3 DCASE2017, 0.5 DCASE2019)")
        sigma_init: float = Field(50.0, gt=0, description="initial slope sigma of the surrogate sigmoid (002: 50)")
        learn_sigma: bool = Field(True, description="learn the slopes along with the thresholds (002: yes)")
        lr: float = Field(1e-2, gt=0, description="Adam learning rate (002: 1e-2)")
        epochs: int = Field(100, ge=1, description="full-batch Adam steps (002: 100)")
        device: str = Field("cpu", description="torch device the optimisation runs on (cpu, cuda, cuda:1, ...)")

    def _fit(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        config = self.config
        device = torch.device(config.device)
        classes = scores.shape[1]
        # float32 like 002's code: float64 sigmoids are tens of times slower on CPU, which matters on frame-level
        # data (millions of rows). With float32 scores (model outputs) the decisions here are exactly those of
        # evaluation in float64, since float32 values widen exactly.
        dtype = torch.float32
        s = torch.as_tensor(scores, dtype=dtype, device=device)
        y = torch.as_tensor(targets, dtype=dtype, device=device)
        theta = torch.full((classes,), config.theta_init, dtype=dtype, device=device, requires_grad=True)
        sigma = torch.full((classes,), config.sigma_init, dtype=dtype, device=device, requires_grad=config.learn_sigma)
        params = [theta, sigma] if config.learn_sigma else [theta]
        adam = Adam(params, lr=config.lr)
        for _ in range(config.epochs):
            loss = -soft_f1(surrogate_step(s - theta, sigma), y, config.metric)
            grads = torch.autograd.grad(loss, params)
            adam.step(grads)
        return theta.detach().cpu().numpy()
