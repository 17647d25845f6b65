"""``train.compile``: ``torch.compile`` of the joint model (encoder and heads), in place, or a logged fallback to eager.

What is compiled: the encoder and each head of the student's ``JointModel`` and of a schedule's extra models (an
EMA teacher; see ``compile_units``), each with ``nn.Module.compile()``, which compiles the module's call *in
place*. The module object, its parameters and its ``state_dict`` keys stay as they were (no ``_orig_mod.`` prefix, unlike ``torch.compile(module)``), so
checkpoints, resume, ``model.init``, export, the optimiser's parameter list and a DDP wrapper see the same module.
The feature extractor (STFT, mel, normalisation) and the losses stay eager: the STFT gains nothing from inductor,
and keeping the losses outside keeps per-task gradients (PCGrad, GradNorm) plain autograd calls on the compiled
graph's outputs.

Compiling happens after ``Schedule.setup``: a teacher is a deep copy of the student, and a copy of a module compiled
in place would keep calling the original's compiled function.

Recompilation: a phase that freezes a group (``requires_grad`` off, eval mode for its dropout and batch norm), the
switch to validation (eval mode, no grad) and a new clip length each compile a new graph once; from the second clip
length on, dynamo marks the time axis dynamic. ``suppress_errors`` is switched on while compiling is on, so a graph
that inductor cannot compile runs eagerly (dynamo logs it) instead of stopping the run mid-epoch; donated buffers
are switched off, so a graph's backward can run more than once (per-task gradients). Both are process-wide settings
that graphs read when they compile, at their first call: ``compile_settings`` holds them for the run's duration and
restores them after (a program that trains through the Python API keeps its own).

Where compiling is not possible at all (no dynamo for this Python, no C++ compiler for inductor's CPU kernels, no
Triton for CUDA), ``compile_models`` returns the reason and the run goes on eagerly; the run records it in
``run.json`` (``compile``) and on the console.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import nn


def compile_unavailable(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here, or None when it can."""
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python version"
    if device.type == "cpu":
        compilers = [os.environ.get("CXX"), "g++", "c++", "clang++"]
        if not any(name and shutil.which(name) for name in compilers):
            return "inductor needs a C++ compiler for CPU kernels (g++ or clang++ on PATH, or $CXX)"
    elif device.type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "inductor needs Triton for CUDA kernels (pip install triton)"
    else:
        return f"train.compile supports cpu and cuda, not {device.type}"
    return None


def compile_models(models: Sequence[nn.Module], enabled: bool, device: torch.device) -> str:
    """Compile ``models`` in place when ``enabled``; returns ``off``, ``on`` or ``eager: <reason>`` (the fallback)."""
    if not enabled:
        return "off"
    reason = compile_unavailable(device)
    if reason is not None:
        return f"eager: {reason}"
    for model in models:
        for part in compile_units(model):
            part.compile()
    return "on"


@contextmanager
def compile_settings(enabled: bool) -> Iterator[None]:
    """The compiler settings a run with ``train.compile`` needs, for the duration of the run (then restored)."""
    with ExitStack() as stack:
        if enabled:
            # A graph that fails to compile runs eagerly, logged by dynamo.
            stack.enter_context(torch._dynamo.config.patch(suppress_errors=True))
            # Per-task gradients (PCGrad, GradNorm) and any plugin that calls autograd.grad(retain_graph=True) go
            # through one graph's backward several times; donated buffers (a memory saving of AOTAutograd) forbid it.
            stack.enter_context(torch._functorch.config.patch(donated_buffer=False))
        yield


def compile_units(model: nn.Module) -> list[nn.Module]:
    """The modules compiled for ``model``: a ``JointModel``'s encoder and each head (its parameter groups), else the
    model itself.

    Not the joint model as one: a recurrent head always breaks the graph (dynamo does not trace ``nn.GRU``), a graph
    break inside the joint forward's loop over the heads makes dynamo skip that frame, and only the frames it calls
    would be compiled; compiling those units directly says what is compiled and spares the failed attempt.
    """
    groups = getattr(model, "parameter_groups", None)
    return list(groups().values()) if callable(groups) else [model]


def is_compiled(model: nn.Module) -> bool:
    """Whether ``model`` (every unit of it, see ``compile_units``) was compiled in place (``nn.Module.compile``)."""
    return all(getattr(part, "_compiled_call_impl", None) is not None for part in compile_units(model))


def use_channels_last(model: nn.Module, enabled: bool) -> bool:
    """``train.channels_last``: 4-D weights (convolutions) in NHWC, so convolutions, pooling and batch norm run on
    oneDNN's (CPU) and cuDNN's native layout. In place; values and ``state_dict`` keys are unchanged."""
    if enabled:
        model.to(memory_format=torch.channels_last)
    return enabled
