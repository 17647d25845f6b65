"""The ``tensorboard`` logger: event files with the epoch scalars, the final metrics and the run's plots.

Scalars per epoch (step = 1-based epoch, as history.json counts) under the names of ``jasc_epoch_end``: ``train/loss/<task>``,
``train/extra/<name>``, ``weight/<task>``, ``lr``, ``val/...``; the final evaluation metrics at run end as
``final/<split>/<task>/<metric>`` (step 0) and every PNG in the run's ``plots/`` as an image ``plots/<name>``.
Default folder: ``<run>/tensorboard`` (``tensorboard --logdir runs`` finds every run); with ``dir:``,
``<dir>/<run folder name>``. Options: ``log: [{name: tensorboard, flush_secs: 30, max_queue: 100}]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import Field

from jasc_core import Logger, hookimpl
from jasc_loggers import missing_dependency, output_dir

#: Open writers by run folder (a sweep runs one after another in the same process).
_writers: dict[str, Any] = {}


class TensorBoard(Logger):
    """TensorBoard event files: the epoch scalars, the final metrics and the run's plots."""

    name = "tensorboard"

    class Config(Logger.Config):
        flush_secs: float = Field(120.0, gt=0, description="seconds between the writer's own flushes to disk (it also "
                                  "flushes at every epoch end)")
        max_queue: int = Field(10, ge=1, description="events held in memory before they are written")


@hookimpl
def jasc_register_components(register: Any) -> None:
    register(TensorBoard)


@hookimpl
def jasc_check_recipe(recipe: Mapping[str, Any]) -> list[str]:
    return missing_dependency(recipe, TensorBoard, "tensorboard")


@hookimpl
def jasc_run_start(run_dir: str, recipe: Mapping[str, Any]) -> None:
    _close(run_dir)  # a writer left by a run that failed before its end
    found = TensorBoard.options(recipe)
    if found is None:
        return
    options = found[1]
    assert isinstance(options, TensorBoard.Config)
    # Imported here: tensorboard is an optional extra, and a run that does not log must not need it.
    from torch.utils.tensorboard import SummaryWriter

    folder = output_dir(run_dir, options.dir, "tensorboard")
    if options.dir:
        folder = folder / Path(run_dir).name
    _writers[run_dir] = SummaryWriter(log_dir=str(folder), max_queue=options.max_queue, flush_secs=options.flush_secs)


@hookimpl
def jasc_epoch_end(run_dir: str, epoch: int, metrics: Mapping[str, float]) -> None:
    writer = _writers.get(run_dir)
    if writer is None:
        return
    for key, value in metrics.items():
        if key != "epoch":  # the step already says it
            writer.add_scalar(key, value, global_step=epoch)
    writer.flush()  # one epoch is minutes: make it visible to a running TensorBoard now


@hookimpl
def jasc_run_end(run_dir: str, metrics: Mapping[str, float]) -> None:
    writer = _writers.get(run_dir)
    if writer is None:
        return
    try:
        for key, value in metrics.items():
            writer.add_scalar(f"final/{key}", value, global_step=0)
        for png in sorted((Path(run_dir) / "plots").glob("*.png")):
            with Image.open(png) as image:
                pixels = np.asarray(image.convert("RGB"))
            writer.add_image(f"plots/{png.stem}", pixels, global_step=0, dataformats="HWC")
    finally:
        _close(run_dir)


def _close(run_dir: str) -> None:
    writer = _writers.pop(run_dir, None)
    if writer is not None:
        writer.close()
