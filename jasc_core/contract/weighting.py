"""The ``Weighting`` component kind: per-task losses -> the one loss the optimiser sees.

The loop calls, per optimiser step: ``task_losses(outputs, targets)`` for each batch of the step (outputs and targets
keyed by output name, already cut to the clips labelled for each; see ``jasc_core.contract.tasks``), then either
``combine(losses, context)`` or, for schemes with ``requires_task_gradients``, ``combine_gradients(grads, losses,
context)`` plus ``combine`` for the heads. After each epoch: ``on_epoch_end(context)``, then ``effective_weights()``
for the history. The loop sets ``training`` (``train()`` / ``eval()``, as ``nn.Module`` does): validation computes
task losses too, and a scheme that records statistics per step must record them only while ``training`` is True.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel
from torch import Tensor, nn

from jasc_core.contract.components import Component
from jasc_core.contract.context import EpochContext, StepContext
from jasc_core.contract.tasks import default_task_losses


class Weighting(Component):
    """Turns per-task losses into the one loss the optimiser sees.

    ``task_losses`` computes unweighted losses per task present in the batch (default: each task description's loss:
    cross-entropy for scene, binary cross-entropy on frames and weak clip labels for event, mean-reduced); ``combine``
    mixes them. Schemes with state override ``on_epoch_end``; schemes with learnable parameters return them from
    ``parameters()`` (the loop gives them their own optimiser group, no weight decay); schemes that work on gradients
    set ``requires_task_gradients = True`` and implement ``combine_gradients``. ``effective_weights`` reports the
    weight each task got, for ``history.json`` and ``weights.png``.
    """

    kind = "weighting"
    #: True for gradient-manipulating schemes (GradNorm, PCGrad): the loop then calls ``combine_gradients``.
    requires_task_gradients: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, object] | BaseModel | None = None) -> None:
        super().__init__(config)
        #: True while training, False during validation (set by the loop through ``train()`` / ``eval()``).
        self.training = True

    def train(self, mode: bool = True) -> Weighting:
        self.training = mode
        return self

    def eval(self) -> Weighting:
        return self.train(False)

    def task_losses(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Unweighted loss per task with targets in the batch (keyed by task name)."""
        return default_task_losses(outputs, targets)

    @abstractmethod
    def combine(self, losses: Mapping[str, Tensor], context: StepContext) -> Tensor:
        """The weighted loss of one step from its per-task losses."""

    def combine_gradients(
        self, grads: Mapping[str, list[Tensor]], losses: Mapping[str, Tensor], context: StepContext
    ) -> list[Tensor]:
        """Per-task gradients of the shared parameters -> the gradient to apply (gradient-based schemes only).

        ``grads[task]`` lists the gradients of that task's loss w.r.t. ``context.shared_parameters`` (the trainable
        encoder parameters), in that order; return one tensor per shared parameter. The heads' gradients come from
        ``combine(losses, context)``, so a head sees its own task's loss with the weight the scheme gives it.
        """
        raise NotImplementedError(f"weighting '{self.name}' sets requires_task_gradients but has no combine_gradients")

    def on_epoch_end(self, context: EpochContext) -> None:
        """Called after every training epoch (``context.train_losses``: epoch mean per task)."""

    def parameters(self) -> list[nn.Parameter]:
        """Learnable parameters of the scheme itself (e.g. uncertainty log-variances)."""
        return []

    def effective_weights(self) -> dict[str, float]:
        """The weight each task got in the epoch just finished, for the run history and ``weights.png``."""
        return {}

    def state_dict(self) -> dict[str, object]:
        return {}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore what ``state_dict`` returned (resume)."""
