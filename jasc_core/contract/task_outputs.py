"""What predicting and exporting need to know about a task, as plain data (no torch: ``jasc predict --onnx``).

A ``TaskDescription`` (``jasc_core.contract.tasks``) gives its ``TaskOutputs``; an ONNX export folder stores them in
``frontend.json`` so that the torch-free predictor reads them back. Inference asks these, never a task's name:

- ``kind``: ``"class"`` (one class per clip, main output ``[B, N]``: windows averaged, the top label written with
  the probabilities), ``"multilabel"`` (independent classes per clip, ``[B, N]``: the maximum over windows, the
  labels at or above the task's threshold written with the probabilities), ``"frames"`` (``[B, T, N]``: frame scores
  of overlapping windows averaged into one track, post-processed into an event list; its clip output
  ``<task>/clip`` is the maximum over windows);
- ``result_key``: the key of the task in a file's prediction (``scene``, ``events``) and ``table`` the file name of
  its TSV (``scenes.tsv``, ``events.tsv``);
- ``selection_metric``: the metric that ranks models of this task (its first validation metric), reported by
  ``jasc export`` for fp32 and int8.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

#: The output kinds inference knows (module docstring).
OUTPUT_KINDS = ("class", "multilabel", "frames")


@dataclass(frozen=True)
class TaskOutputs:
    """One task's outputs as inference sees them (module docstring)."""

    task: str
    kind: str
    result_key: str
    table: str
    selection_metric: str

    def __post_init__(self) -> None:
        if self.kind not in OUTPUT_KINDS:
            raise ValueError(f"task '{self.task}': output kind {self.kind!r} is not one of {', '.join(OUTPUT_KINDS)}")

    @property
    def frame_level(self) -> bool:
        return self.kind == "frames"

    def output_names(self) -> tuple[str, ...]:
        """The output names of this task, main output first (``event``, ``event/clip``)."""
        return (self.task, f"{self.task}/clip") if self.frame_level else (self.task,)

    def is_frame_track(self, output_name: str) -> bool:
        """True for the frame-wise main output (stitched, cut to a short file's frames)."""
        return self.frame_level and output_name == self.task

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> TaskOutputs:
        return cls(**{key: data[key] for key in ("task", "kind", "result_key", "table", "selection_metric")})


def onnx_output_name(output_name: str) -> str:
    """The ONNX name of an output (ONNX names avoid the slash: ``event/clip`` -> ``event_clip``)."""
    return output_name.replace("/", "_")


def task_of_output(specs: Mapping[str, TaskOutputs], output_name: str) -> TaskOutputs:
    """The spec of the task an output name belongs to."""
    return specs[output_name.split("/", 1)[0]]
