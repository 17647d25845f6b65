"""The ``tensorboard`` logger: event files with the epoch scalars, the final metrics and the run's plots.

Scalars per epoch (step = 1-based epoch, as history.json counts) under the names of ``jasc_epoch_end``: ``train/loss/<task>``,
``train/extra/<name>``, ``weight/<task>``, ``lr``, ``val/...``; the final evaluation metrics at run end as
``final/<split>/<task>/<metric>`` (step 0) and every PNG in the run's ``plots/`` as an image ``plots/<name>``.
Default folder: ``<run>/tensorboard`` (``tensorboard --logdir runs`` finds every run); with ``dir:``,
``<dir>/<run folder name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from jasc_core import hookimpl
from jasc_loggers import logger_entry, missing_dependency, output_dir

NAME = "tensorboard"
#: Open writers by run folder (a sweep runs one after another in the same process).
_writers: dict[str, Any] = {}


@hookimpl
def jasc_logger_names() -> list[str]:
    return [NAME]


@hookimpl
def jasc_check_recipe(recipe: Mapping[str, Any]) -> list[str]:
    return missing_dependency(recipe, NAME, "tensorboard")


@hookimpl
def jasc_run_start(run_dir: str, recipe: Mapping[str, Any]) -> None:
    _close(run_dir)  # a writer left by a run that failed before its end
    entry = logger_entry(recipe, NAME)
    if entry is None:
        return
    # Imported here: tensorboard is an optional extra, and a run that does not log must not need it.
    from torch.utils.tensorboard import SummaryWriter

    folder = output_dir(run_dir, entry, "tensorboard")
    if entry.get("dir"):
        folder = folder / Path(run_dir).name
    _writers[run_dir] = SummaryWriter(log_dir=str(folder))


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
