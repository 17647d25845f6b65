"""The core's own recipe blocks: ``train``, ``evaluate``, ``output``, ``distill`` and ``model.init`` (component blocks,
loggers' included, come from the registry).

The engine (``jasc_core.training.loop``) reads ``train``; evaluation (``jasc_core.evaluation``) reads ``evaluate``; the run
folder location comes from ``output`` (see docs/training.md and docs/evaluation.md).
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jasc_core.contract.slots import ComponentSlot


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Seconds = Annotated[float, Field(ge=0)]


class PostprocessConfig(_Strict):
    """SED post-processing (``jasc_core.inference.postprocess``)."""

    # The bound sits on each float: a bound on the whole union would be applied to the dict too and crash.
    median_filter: Seconds | dict[str, Seconds] = Field(
        0.0, description="median filter length in seconds, one for all classes or per class (0: off)"
    )
    min_event_length: float = Field(0.0, ge=0, description="drop events shorter than this (seconds)")
    merge_gap: float = Field(0.0, ge=0, description="merge same-class events separated by at most this (seconds)")


class OptimizerConfig(_Strict):
    name: Literal["radam", "adam", "adamw"] = Field("radam", description="optimiser (001 Table III: RAdam)")
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="decoupled for adamw, L2 otherwise")


class LRScheduleConfig(_Strict):
    name: Literal["constant", "cosine"] = Field("constant", description="learning-rate schedule after warmup")
    warmup_epochs: float = Field(0.0, ge=0, description="linear warmup length in epochs")
    min_lr: float = Field(0.0, ge=0, description="final learning rate of the cosine schedule")


class TrainConfig(_Strict):
    epochs: int = Field(20, ge=1, description="training epochs")
    steps_per_epoch: int | None = Field(
        None, ge=1, description="optimiser steps in every epoch of every phase; null: the schedule decides (one pass "
        "over the longest stream a phase reads). Fix it to compare schedules at matched steps: streams that run out "
        "start a new pass")
    batch_size: int = Field(16, ge=1, description="clips per batch of every data stream without its own size")
    stream_batch_sizes: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description="batch size per data stream of the training split (scene, strong, weak, unlabelled, "
        "scene+strong, ...), e.g. DESED's {strong: 12, weak: 12, unlabelled: 24}",
    )
    streams: list[str] | None = Field(
        None,
        description="read only these data streams of the training split (stream names or label kinds, e.g. "
        "[strong] to train an event model on strong clips alone); null: every stream the schedule uses",
    )
    optimizer: OptimizerConfig = OptimizerConfig()
    lr_schedule: LRScheduleConfig = LRScheduleConfig()
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm; none for no clipping")
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="fp32; bf16 (autocast: matmuls and convolutions in bf16, features, losses and metrics in "
        "fp32); auto: bf16 where the device computes it natively (CUDA with bf16, CPU with AVX-512 BF16 or AMX), "
        "else fp32")
    channels_last: bool = Field(
        False, description="convolution weights and activations in NHWC layout (oneDNN's and cuDNN's native one): "
        "faster convolutions and pooling, most of all with bf16 on CPU")
    compile: bool = Field(False, description="torch.compile the joint model (encoder and heads; features and "
                          "losses stay eager); falls back to eager, logged, where compiling is not possible")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    deterministic: bool = Field(False, description="deterministic algorithms (resume reproduces exactly on CPU)")
    num_workers: int | Literal["auto"] = Field(
        0, description="data-loader worker processes; auto: min(CPU cores - 1, 4), 0 on one core")
    sync_batchnorm: bool = Field(False, description="with several processes (jasc run --nproc, torchrun): batch-norm "
                                 "statistics over the global batch of all processes, as one process computes them")
    cache_audio: bool = Field(
        True, description="keep decoded training/validation waveforms in memory after first use, up to "
        "cache_memory_mb")
    cache_memory_mb: float = Field(
        2048.0, ge=0, description="memory budget of the in-memory waveform cache (MB, shared by the loader "
        "processes of a split); clips beyond it are read again each epoch")
    disk_cache: bool = Field(
        False, description="keep decoded, resampled clips on disk (disk_cache_dir) and read them from there; built "
        "once before training, refreshed when a source file changes")
    disk_cache_dir: str | None = Field(None, description="folder of the disk cache (default $JASC_CACHE/audio or "
                                       "~/.cache/jasc/audio)")
    train_split: str = Field("train", description="split the model is trained on (and normalisation is fitted on)")
    val_split: str = Field("val", description="split validated every epoch (model selection, early stopping)")
    devices: list[str] | None = Field(
        None, description="train only on clips recorded by these devices (Clip.device), and validate on them where "
        "the validation split has any (device-specific fine-tuning, `jasc finetune-devices`); null: every clip")
    select_metric: str = Field(
        "val/score",
        description="metric that picks the best checkpoint: val/score (mean of scene accuracy and event frame "
        "micro-F over the model's tasks), val/loss, val/loss/<task>, val/scene/accuracy, val/scene/macro_f1, "
        "val/event/frame_micro_f1, val/event/frame_macro_f1",
    )
    select_mode: Literal["max", "min"] = Field("max", description="whether a larger select_metric is better")
    early_stopping: int | None = Field(None, ge=1, description="stop after this many epochs without improvement")
    checkpoint_every: float | None = Field(
        None, gt=0, description="minutes between mid-epoch checkpoints, each written at the next step boundary so "
        "that a resume continues inside the epoch; none: at epoch ends (and on a stopping signal) only")

    @model_validator(mode="before")
    @classmethod
    def _amp_alias(cls, data: object) -> object:
        """``amp`` (before ``precision`` existed) is read as ``precision``, with a FutureWarning (users see it)."""
        if not isinstance(data, dict) or "amp" not in data:
            return data
        data = dict(data)
        amp = data.pop("amp")
        if not isinstance(amp, bool):
            raise ValueError(f"amp: {amp!r} is not true/false; amp is replaced by precision: fp32 | bf16 | auto")
        wanted = "bf16" if amp else "fp32"
        if "precision" in data and data["precision"] != wanted:
            raise ValueError(f"amp: {str(amp).lower()} contradicts precision: {data['precision']}; amp is replaced "
                             "by precision, remove amp")
        warnings.warn(f"train.amp is deprecated: write 'precision: {wanted}' instead (amp: true now means bf16 "
                      "autocast on CPU as well as on CUDA)", FutureWarning, stacklevel=2)
        data["precision"] = wanted
        return data


#: What tuned thresholds decide on: frames (frame-level F1) or 1-s segments (segment-based F1).
TuneLevel = Literal["frame", "segment"]


class EvaluateConfig(_Strict):
    split: str = Field("eval", description="split evaluated at the end of the run")
    threshold: float = Field(0.5, ge=0, le=1, description="event decision threshold (001 Table III: 0.5)")
    postprocess: PostprocessConfig = PostprocessConfig()
    tune_thresholds: Annotated[dict[str, Any] | None, ComponentSlot("thresholds")] = Field(
        None, description="a thresholds block: tune per-class event thresholds on the validation split after training"
    )
    tune_level: TuneLevel = Field(
        "frame", description="what tune_thresholds optimises: frame-level F1 (frames) or segment-based F1 (1-s segments)"
    )
    plots: bool = Field(True, description="write PNG plots into the run folder")


class OutputConfig(_Strict):
    dir: str = Field("runs", description="folder that holds run folders")
    name: str | None = Field(None, description="run folder name (default: recipe name and a timestamp)")


class InitConfig(_Strict):
    """``model.init``: start from another run's (or checkpoint's) weights (fine-tuning), before training."""

    run: str | None = Field(None, description="run folder whose selected model (checkpoints/best.pt) gives the weights")
    checkpoint: str | None = Field(None, description="a jasc checkpoint file (.pt) instead of a run folder")
    parts: list[str] | None = Field(
        None, description="parameter groups to load: encoder, heads.<task> (default: every group of the model)"
    )
    strict: bool = Field(False, description="fail instead of skipping a tensor that is missing or has another shape")

    @model_validator(mode="after")
    def _one_source(self) -> InitConfig:
        if (self.run is None) == (self.checkpoint is None):
            raise ValueError("give exactly one of run: RUN_DIR or checkpoint: PATH")
        return self


class DistillConfig(_Strict):
    """``distill``: train the student also on the averaged outputs of finished runs (knowledge distillation;
    ``jasc_core.training.distill``, docs/distillation.md)."""

    teachers: list[str] = Field(min_length=1, description="run folders of the teachers (any jasc model with the "
                                "student's tasks and labels); their outputs are averaged (an ensemble)")
    temperature: float = Field(2.0, gt=0, description="softmax temperature T of the scene KL term (scaled by T^2)")
    weight: float = Field(1.0, ge=0, description="factor of each distillation term added to the weighted task loss")
    tasks: list[str] | None = Field(None, description="tasks to distil (default: every task of the student)")
    outputs: Literal["auto", "cached", "online"] = Field(
        "auto", description="cached: teachers' outputs computed once per clip and kept (memory and disk); online: "
        "computed every step; auto: cached unless an augmentation of the recipe changes the clip's audio")
    cache_dir: str | None = Field(None, description="folder of the teacher-output cache (default $JASC_CACHE/"
                                  "teachers or ~/.cache/jasc/teachers)")
