"""Device-specific fine-tuning (DCASE 2025 Task 1 baseline practice): one copy of a trained run's model per recording
device seen in its training split, each fine-tuned on that device's clips; the general model is kept for the rest.

``finetune_devices(RUN)`` trains, per device ``D`` of the training split's ``Clip.device`` values, a run folder
``RUN/devices/D`` from RUN's recipe with ``model.init.run = RUN`` (every weight: encoder and heads), ``train.devices =
[D]`` (training and, where it has D's clips, validation split cut to D) and the given epochs and learning rate; a
``distill`` block is dropped (the fine-tuning is on labels, as the baseline's). Each is evaluated like any run.
``RUN/device_models.json`` then lists them (``jasc_core.inference.device_models`` reads it) with the accuracy per
device on the evaluation split of the general model and of the model that serves the device (its own for a seen
device, the general one for an unseen device).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jasc_core.contract.json_types import JSONObject
from jasc_core.errors import RunError
from jasc_core.evaluation import evaluate_run
from jasc_core.inference.device_models import DEVICE_MODELS_FILE
from jasc_core.inference.scoring import load_split
from jasc_core.recipes.model import build, load_recipe, resolved_dict, validate_recipe
from jasc_core.runs.folder import open_run, read_json, write_json
from jasc_core.training.run import run_recipe

if TYPE_CHECKING:
    from jasc_core.recipes.types import Recipe


def seen_devices(recipe: Recipe) -> list[str]:
    """The devices of the recipe's training split (sorted)."""
    dataset = build("dataset", recipe.data)
    dataset.prepare()
    clips = load_split(dataset, recipe.train.train_split, recipe.data.name)
    return sorted({clip.device for clip in clips if clip.device is not None})


def device_recipe(recipe: Recipe, run_root: Path, device: str, epochs: int | None, lr: float | None) -> Recipe:
    """RUN's recipe turned into the fine-tuning recipe of one device."""
    data = resolved_dict(recipe)
    data.pop("distill", None)
    data["model"]["init"] = {"run": str(run_root)}
    data["train"]["devices"] = [device]
    if epochs is not None:
        data["train"]["epochs"] = epochs
    if lr is not None:
        data["train"]["optimizer"]["lr"] = lr
    data["train"]["lr_schedule"] = {**data["train"].get("lr_schedule", {}), "warmup_epochs": 0.0}
    data["evaluate"]["plots"] = False
    return validate_recipe(data)


def finetune_devices(run_dir: str | Path, *, epochs: int | None = None, lr: float | None = None) -> JSONObject:
    """Fine-tune one copy per seen device, list them in ``device_models.json``; returns that file's content."""
    run = open_run(run_dir)
    recipe = load_recipe(run.recipe)
    devices = seen_devices(recipe)
    if not devices:
        raise RunError(f"{run.root}: the training split of data '{recipe.data.name}' names no recording device "
                       "(Clip.device); device-specific models need one")
    split = recipe.evaluate.split
    general = _per_device(run.root, split, recipe)
    listing: JSONObject = {"devices": {}, "split": split, "accuracy": {}}
    for device in devices:
        out = run.root / "devices" / device
        if not (out / "checkpoints" / "best.pt").is_file():
            run_recipe(device_recipe(recipe, run.root, device, epochs, lr), recipe_path=None, out_dir=out)
        listing["devices"][device] = f"devices/{device}"
        specific = _per_device(out, split, None)
        if device in specific:
            listing["accuracy"][device] = {"general": general.get(device, {}).get("accuracy"),
                                           "device_model": specific[device]["accuracy"],
                                           "n_clips": specific[device]["n_clips"], "seen": True}
    for device, values in general.items():
        if device not in listing["devices"]:
            listing["accuracy"][device] = {"general": values["accuracy"], "device_model": values["accuracy"],
                                           "n_clips": values["n_clips"], "seen": False}
    write_json(run.root / DEVICE_MODELS_FILE, listing)
    return listing


def _per_device(run_root: Path, split: str, recipe: Recipe) -> dict[str, dict[str, JSONObject]]:
    """Scene accuracy per device of a run on ``split`` (from metrics.json, evaluated first where missing)."""
    metrics_path = open_run(run_root).metrics
    metrics = read_json(metrics_path).get(split) if metrics_path.is_file() else None
    if metrics is None:
        metrics = evaluate_run(run_root, split=split, recipe=recipe, plots=False, psds=False, print_table=False)
    for values in metrics.values():
        if isinstance(values, dict) and "per_device" in values:
            return values["per_device"]
    return {}
