"""Built-in datasets: the joint TUT annotation format, TAU and DESED formats, and synthetic soundscapes.

Components (kind ``dataset``): ``joint``, ``tau``, ``desed``, ``disjoint``, ``synthetic``, ``maestro`` (MAESTRO Real, soft
labels) and ``multi`` (several datasets with class mappings). Commands:
``jasc data synth`` and ``jasc data info``. See docs/data.md and docs/synthetic.md.
"""

from __future__ import annotations

from typing import Any

from jasc_core import hookimpl
from jasc_datasets.dcase_formats import Desed, Disjoint, Tau
from jasc_datasets.joint import Joint
from jasc_datasets.maestro import Maestro
from jasc_datasets.multi import Multi
from jasc_datasets.synthetic import Synthetic, synthesize

__all__ = ["Desed", "Disjoint", "Joint", "Maestro", "Multi", "Synthetic", "Tau", "synthesize"]


@hookimpl
def jasc_register_components(register) -> None:
    for cls in (Joint, Tau, Desed, Disjoint, Synthetic, Multi, Maestro):
        register(cls)


@hookimpl
def jasc_register_commands(app: Any) -> None:
    from jasc_datasets.cli import data_app

    app.add_typer(data_app, name="data")  # its help is data_app's own, so `jasc --help` and `jasc data --help` agree
