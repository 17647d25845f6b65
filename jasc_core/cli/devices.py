"""``jasc finetune-devices``: a thin command over ``jasc_core.training.device_models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jasc_core.console import output_console

console = output_console()


def finetune_devices_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `jasc run` (the general model).")],
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Fine-tuning epochs per device (default: "
                                               "the recipe's).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0, help="Peak learning rate (default: the recipe's).")] = None,
) -> None:
    """One fine-tuned copy of the model per recording device seen in training (RUN/devices/<device>); the general
    model stays for unseen devices. `jasc predict --device D` then picks the device's model."""
    from jasc_core.training.device_models import finetune_devices as finetune

    listing = finetune(run_dir, epochs=epochs, lr=lr)
    table = Table(title=f"scene accuracy per device on {listing['split']} (general -> the model serving it)")
    for column in ("device", "seen in training", "clips", "general", "device model"):
        table.add_column(column)
    for device, row in sorted(listing["accuracy"].items()):
        table.add_row(device, "yes" if row["seen"] else "no", str(row["n_clips"]), f"{100 * row['general']:.2f} %",
                      f"{100 * row['device_model']:.2f} %")
    console.print(table)
