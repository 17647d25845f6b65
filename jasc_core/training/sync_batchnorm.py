"""Synchronised batch norm (``train.sync_batchnorm``): batch statistics over the global batch of every process.

On CUDA this is ``torch.nn.SyncBatchNorm`` as it is. torch's class refuses CPU tensors, and the CPU (gloo) is where
jasc's distributed tests run, so on the CPU the same computation is made from torch.distributed's all-reduce: the
per-channel sums and clip counts of every process give the global mean, the summed squared deviations from it the
global (biased) variance, exactly what one process computes over the whole batch. The all-reduce is differentiable
(its backward all-reduces the gradient, as ``torch.nn.SyncBatchNorm``'s does), so gradients flow between processes.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx
from torch.nn.modules.batchnorm import _BatchNorm


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the gradient of every process's copy is the sum of the gradients of all copies."""

    @staticmethod
    def forward(ctx: FunctionCtx, tensor: Tensor) -> Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CpuSyncBatchNorm(_BatchNorm):
    """Batch norm of any input rank whose training statistics are synchronised over processes on the CPU (gloo).

    Not a ``torch.nn.SyncBatchNorm``: DDP refuses those in a CPU module. Its state dict is batch norm's.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not (self.training and distributed):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, input.shape[1]] + [1] * (input.dim() - 2)
        count = torch.full((1,), input.numel() / input.shape[1], dtype=input.dtype)
        totals = _AllReduceSum.apply(torch.cat([input.sum(dims), count]))
        n = totals[-1]
        mean = totals[:-1] / n
        centred = input - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n  # two passes: as exact as one process's
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                unbiased = var.detach() * (n / (n - 1)) if float(n) > 1 else var.detach()  # as F.batch_norm
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        out = centred / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with every batch norm layer synchronised over processes (in place where torch's converter is)."""
    module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if device.type != "cuda":
        for layer in module.modules():
            if type(layer) is nn.SyncBatchNorm:
                layer.__class__ = CpuSyncBatchNorm  # same parameters and buffers, a forward that runs on the CPU
    return module
