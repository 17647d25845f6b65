"""Which model of a run serves a recording device: the device's fine-tuned copy, else the general model.

``jasc finetune-devices RUN`` (``jasc_core.training.device_models``) writes one run folder per device seen in
training under ``RUN/devices/<device>/`` and lists them in ``RUN/device_models.json``
(``{"devices": {"a": "devices/a", ...}}``). ``jasc predict --device D``, ``jasc.load(RUN, device=D)`` and the wheel
export read that list here: a listed device gets its own model, any other device (unseen in training, or None) the
general model of RUN itself (DCASE 2025 Task 1 baseline practice).
"""

from __future__ import annotations

from pathlib import Path

from jasc_core.errors import RunError
from jasc_core.runs.folder import open_run, read_json

#: The file in a run folder that lists its device-specific models.
DEVICE_MODELS_FILE = "device_models.json"


def device_models(run_dir: str | Path) -> dict[str, Path]:
    """The device-specific run folders of a run, by device ({} when it has none)."""
    root = open_run(run_dir).root
    listing = root / DEVICE_MODELS_FILE
    if not listing.is_file():
        return {}
    devices = read_json(listing).get("devices", {})
    found = {device: root / relative for device, relative in devices.items()}
    missing = [str(path) for path in found.values() if not path.is_dir()]
    if missing:
        raise RunError(f"{listing} lists device models that are not there: {', '.join(missing)}")
    return found


def run_for_device(run_dir: str | Path, device: str | None) -> Path:
    """The run folder whose model serves ``device``: its fine-tuned copy, else ``run_dir`` (the general model)."""
    if device is None:
        return Path(run_dir)
    return device_models(run_dir).get(device, Path(run_dir))
