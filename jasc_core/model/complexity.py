"""Model complexity: parameters, parameter memory and MACs per component (encoder, each head) and in total, per
clip and per second of audio, in two conventions, and checks against the DCASE challenge budgets.

Conventions (docs/complexity.md):

- ``macs`` (conv / linear / RNN only): 1 MAC = 1 multiply-add of a convolution, a linear layer or an RNN's matrix
  products, counted by PyTorch's maintained ``torch.utils.flop_counter.FlopCounterMode`` (which counts 2 FLOPs per
  multiply-add, so MACs = FLOPs / 2). Bias additions, batch norm, activations, pooling, dropout and an RNN's
  element-wise gate arithmetic are not counted. The model is profiled on a CPU copy in eval mode, where PyTorch runs
  RNNs as matrix products that the counter sees; should a backend hide an RNN from the counter (cuDNN's fused kernel
  does), its matrix products are added by the standard formula instead (``rnn_macs``).
- ``macs_dcase`` (DCASE Task 1): torchinfo's ``total_mult_adds``, as the Task 1 baselines compute it (NeSsi's
  ``get_torch_size``): every parameter of a conv or linear layer times its output positions (biases included),
  batch norm as its parameter count, an RNN as its parameter count times the sequence length.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from jasc_core.console import output_console
from jasc_core.contract.json_types import JSONObject
from jasc_core.contract.registry import component
from jasc_core.errors import ConfigError
from jasc_core.model.class_counts import class_counts
from jasc_core.model.pipeline import JointModel, build_model
from jasc_core.recipes.model import block_name_and_config, load_recipe

if TYPE_CHECKING:
    from rich.console import Console

#: The statement every report carries, so a number is never read without its convention.
CONVENTION = (
    "1 MAC = 1 multiply-add of conv / linear / RNN matrix products (torch.utils.flop_counter FLOPs / 2); "
    "biases, batch norm, activations, pooling and RNN gate element-wise ops are not counted"
)
DCASE_CONVENTION = (
    "DCASE Task 1: torchinfo total mult-adds (conv / linear weights and biases times output positions, batch norm "
    "by its parameter count, RNN parameters times steps)"
)
#: Bytes per parameter at each storage precision (parameter memory, as DCASE Task 1 counts it).
PRECISION_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}


#: Gate matrices per RNN cell type: each gate multiplies the input and the hidden state by its own matrix.
RNN_GATES = {"GRU": 3, "LSTM": 4, "RNN_TANH": 1, "RNN_RELU": 1}


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def rnn_macs(rnn: nn.RNNBase, batch: int, steps: int) -> int:
    """Multiply-adds of an RNN's matrix products over ``steps`` time steps of ``batch`` sequences.

    Per layer, direction and step: ``gates * hidden * (inputs + hidden)`` where ``inputs`` is the input size for the
    first layer and ``hidden * directions`` after it (input-to-hidden plus hidden-to-hidden products).
    """
    if getattr(rnn, "proj_size", 0):
        raise NotImplementedError("MAC count of LSTMs with proj_size is not implemented")
    gates = RNN_GATES[rnn.mode]
    directions = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        inputs = rnn.input_size if layer == 0 else rnn.hidden_size * directions
        total += gates * rnn.hidden_size * (inputs + rnn.hidden_size)
    return total * directions * batch * steps


def _rnn_shape(rnn: nn.RNNBase, inputs: Sequence[object]) -> tuple[int, int]:
    x = inputs[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        return int(x.batch_sizes[0]), int(x.batch_sizes.numel())  # upper bound: the padded length
    if x.dim() == 2:  # unbatched [T, I]
        return 1, x.shape[0]
    return (x.shape[0], x.shape[1]) if rnn.batch_first else (x.shape[1], x.shape[0])


def count_macs(module: nn.Module, *inputs: Tensor) -> tuple[int, object]:
    """MACs of one forward pass of ``module`` and its output (see the module docstring for what is counted)."""
    rnn_calls: list[tuple[str, int]] = []
    names = {sub: name for name, sub in module.named_modules()}

    def on_rnn(rnn: nn.Module, args: tuple, _output: object) -> None:
        batch, steps = _rnn_shape(rnn, args)
        rnn_calls.append((names[rnn], rnn_macs(rnn, batch, steps)))

    hooks = [sub.register_forward_hook(on_rnn) for sub in module.modules() if isinstance(sub, nn.RNNBase)]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            output = module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    flops = counter.get_flop_counts()
    macs = counter.get_total_flops() // 2
    root = type(module).__name__
    for name, formula in rnn_calls:
        key = f"{root}.{name}" if name else root  # the counter's module naming: root class, then the dotted path
        seen = sum(flops.get(key, {}).values())
        if seen == 0:
            macs += formula  # the counter did not see this RNN's products (fused kernel): add them by formula
    return macs, output


def count_macs_dcase(module: nn.Module, *inputs: Tensor) -> int:
    """Mult-adds of one forward pass as DCASE Task 1 counts them: torchinfo's ``total_mult_adds``."""
    import torchinfo

    with torch.no_grad():
        summary = torchinfo.summary(module, input_data=list(inputs), verbose=0, device="cpu", mode="eval")
    return int(summary.total_mult_adds)


def profile_model(model: JointModel, n_frames: int, n_features: int, seconds: float) -> JSONObject:
    """Parameters, parameter memory and MACs (both conventions) of each component and of the whole model for one
    clip ``[1, n_frames, n_features]``.

    ``seconds`` is the clip's duration, for the per-second figures. The model itself is left untouched: a CPU copy
    in eval mode is profiled.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    features = torch.zeros(1, n_frames, n_features)
    rows: list[JSONObject] = []
    encoder_macs, feature_map = count_macs(model.encoder, features)
    rows.append(_row("encoder", model.encoder, encoder_macs, count_macs_dcase(model.encoder, features), seconds))
    for task, head in model.heads.items():
        head_macs, _ = count_macs(head, feature_map)
        rows.append(_row(f"heads.{task}", head, head_macs, count_macs_dcase(head, feature_map), seconds))
    params = count_parameters(model)
    other = params - sum(row["params"] for row in rows)
    if other:  # parameters the JointModel holds outside its components (none today): keep the total honest
        rows.append({"component": "other", "name": "", "params": other, "memory_bytes": _memory(other),
                     "macs": 0, "macs_per_second": 0.0, "macs_dcase": 0, "macs_dcase_per_second": 0.0})
    macs = sum(row["macs"] for row in rows)
    # The whole model through torchinfo once more: the challenge figure is the model's, not a sum of parts.
    macs_dcase = count_macs_dcase(model, features)
    return {
        "input": {"shape": [1, n_frames, n_features], "seconds": seconds},
        "feature_map": list(feature_map.shape),
        "convention": CONVENTION,
        "convention_dcase": DCASE_CONVENTION,
        "components": rows,
        "total": {"params": params, "memory_bytes": _memory(params), "macs": macs, "macs_per_second": macs / seconds,
                  "macs_dcase": macs_dcase, "macs_dcase_per_second": macs_dcase / seconds},
    }


def _memory(params: int) -> dict[str, int]:
    return {precision: params * size for precision, size in PRECISION_BYTES.items()}


def _row(component: str, module: nn.Module, macs: int, macs_dcase: int, seconds: float) -> JSONObject:
    params = count_parameters(module)
    return {
        "component": component,
        "name": getattr(module, "name", type(module).__name__),
        "params": params,
        "memory_bytes": _memory(params),
        "macs": macs,
        "macs_per_second": macs / seconds,
        "macs_dcase": macs_dcase,
        "macs_dcase_per_second": macs_dcase / seconds,
    }


def _si(value: float) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {suffix}"
    return f"{value:.0f}"


def render_profile(report: JSONObject, console: Console) -> None:
    """Print a profile report as a rich table on ``console`` (a ``rich.console.Console``)."""
    from rich.table import Table

    shape = " x ".join(str(n) for n in report["input"]["shape"])
    table = Table(title=f"Model complexity, input [{shape}] = {report['input']['seconds']:g} s of audio")
    table.add_column("component")
    table.add_column("parameters", justify="right")
    table.add_column("kB fp32/fp16/int8", justify="right")
    table.add_column("MACs / clip", justify="right")
    table.add_column("DCASE MACs / clip", justify="right")
    table.add_column("per s: MACs | DCASE", justify="right")

    def cells(row: JSONObject) -> list[str]:
        memory = "/".join(f"{row['memory_bytes'][p] / 1000:.1f}" for p in PRECISION_BYTES)
        return [f"{row['params']:,}", memory, f"{row['macs']:,}", f"{row['macs_dcase']:,}",
                f"{_si(row['macs_per_second'])} | {_si(row['macs_dcase_per_second'])}"]

    for row in report["components"]:
        table.add_row(f"{row['component']} {row['name']}".strip(), *cells(row))
    table.add_section()
    table.add_row("total", *cells(report["total"]), style="bold")
    console.print(table)
    if "n_classes" in report:
        used = ", ".join(f"{task} {count} ({report['n_classes_source'][task]})"
                         for task, count in report["n_classes"].items())
        console.print(f"classes: {used}")
    console.print(f"[dim]MACs: {report['convention']}[/dim]")
    console.print(f"[dim]DCASE MACs: {report['convention_dcase']}; kB = 1000 bytes of parameters[/dim]")


@dataclass(frozen=True)
class Budget:
    """A challenge's complexity limits. ``None`` means the challenge sets no limit on that quantity."""

    name: str
    title: str
    clip_seconds: float  # the clip the limits are stated for
    max_param_bytes: int | None
    param_precision: str  # the storage precision the memory limit is checked at
    max_macs: int | None  # DCASE-convention MACs for one clip of clip_seconds
    note: str


BUDGETS: dict[str, Budget] = {
    # DCASE 2024 / 2025 Task 1 rules, checked as the baseline's helpers/nessi.py does: parameter memory <= 128,000
    # bytes (61,148 parameters at fp16 = 122,296 bytes) and <= 30,000,000 torchinfo mult-adds for one 1-s clip.
    "dcase-t1": Budget(
        name="dcase-t1", title="DCASE Task 1 (low-complexity ASC)", clip_seconds=1.0, max_param_bytes=128_000,
        param_precision="fp16", max_macs=30_000_000,
        note="parameter memory <= 128 kB (128,000 bytes) at fp16, <= 30 M MACs (torchinfo mult-adds) per 1-s clip",
    ),
    # DCASE 2023-2025 Task 4 set no complexity limit: submissions report parameters, MACs (for 10 s of audio) and
    # energy; the budget prints those figures and never fails.
    "dcase-t4": Budget(
        name="dcase-t4", title="DCASE Task 4 (SED)", clip_seconds=10.0, max_param_bytes=None, param_precision="fp32",
        max_macs=None,
        note="no official limit: Task 4 asks submissions to report parameters, MACs for 10 s of audio and energy",
    ),
}


def check_budget(report: JSONObject, budget: Budget) -> list[str]:
    """What in ``report`` is over ``budget``'s limits, one line each (empty: within the budget).

    The report must be of a clip of ``budget.clip_seconds`` (MAC limits are per clip of that length).
    """
    if abs(report["input"]["seconds"] - budget.clip_seconds) > 1e-9:
        raise ValueError(f"budget {budget.name} is stated for {budget.clip_seconds:g}-s clips; the report is of "
                         f"{report['input']['seconds']:g} s")
    total = report["total"]
    over: list[str] = []
    memory = total["memory_bytes"][budget.param_precision]
    if budget.max_param_bytes is not None and memory > budget.max_param_bytes:
        over.append(f"parameter memory {memory:,} bytes at {budget.param_precision} ({total['params']:,} "
                    f"parameters) is over {budget.max_param_bytes:,} bytes")
    if budget.max_macs is not None and total["macs_dcase"] > budget.max_macs:
        over.append(f"MACs {total['macs_dcase']:,} per {budget.clip_seconds:g}-s clip (DCASE convention) are over "
                    f"{budget.max_macs:,}")
    return over


def profile_recipe(recipe_path: str, sets: Sequence[str] = (), seconds: float | None = None) -> JSONObject:
    """Profile the model of a recipe for one clip of the recipe's features.

    Clip length: ``seconds`` if given, else the dataset's ``clip_seconds`` if its config has one, else 10 s. Class
    counts (a dataset may need preparing before it knows its labels, so it is not asked): each head's ``n_classes``
    if the recipe states it, else the length of the dataset config's ``<task>_labels`` list if given, else 001's 4
    scenes / 25 events; the report says which was used.
    """

    recipe = load_recipe(recipe_path, sets)
    name, config = block_name_and_config(recipe.features, "features")
    features = component("features", name)(config)
    if seconds is None:
        seconds = float(getattr(recipe.data, "clip_seconds", None) or 10.0)
    if seconds <= 0:
        raise ConfigError(f"--seconds must be positive, got {seconds:g}")
    n_frames = features.num_frames(round(seconds * features.sample_rate))
    tasks = [task for task, block in recipe.model.heads if block is not None]
    n_classes, source = class_counts(recipe, tasks, "default: 001's joint TUT data")

    model = build_model(recipe.model, features.n_features, n_classes)
    report = profile_model(model, n_frames, features.n_features, seconds)
    report["recipe"] = str(recipe_path)
    report["n_classes"] = n_classes
    report["n_classes_source"] = source
    return report


def profile_command(recipe_path: str, sets: Sequence[str] = (), as_json: bool = False,
                    budget: str | None = None, seconds: float | None = None) -> int:
    """``jasc profile RECIPE [--set a.b=v] [--json] [--budget NAME] [--seconds S]``: print the complexity table (or
    the report as JSON); with a budget, check it and return 1 when the model is over (else 0)."""
    import json


    chosen = None
    if budget is not None:
        if budget not in BUDGETS:
            raise ConfigError(f"--budget: no budget '{budget}'; budgets: {', '.join(BUDGETS)}")
        chosen = BUDGETS[budget]
        if seconds is not None and seconds != chosen.clip_seconds:
            raise ConfigError(f"--budget {budget} is stated for {chosen.clip_seconds:g}-s clips; drop --seconds "
                              f"{seconds:g}")
        seconds = chosen.clip_seconds
    report = profile_recipe(recipe_path, sets, seconds)
    over: list[str] = []
    if chosen is not None:
        over = check_budget(report, chosen)
        report["budget"] = {"name": chosen.name, "limits": chosen.note, "over": over, "within": not over}
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        console = output_console()
        render_profile(report, console)
        if chosen is not None:
            if over:
                verdict = "OVER: " + "; ".join(over)
            elif chosen.max_param_bytes is None and chosen.max_macs is None:
                verdict = "report only (no limits to check)"
            else:
                verdict = "within budget"
            console.print(f"budget {chosen.name} ({chosen.note}): {verdict}", markup=False, highlight=False)
    return 1 if over else 0
