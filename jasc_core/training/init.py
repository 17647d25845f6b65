"""``model.init``: start a run from another run's weights (fine-tuning), reporting what was taken.

    model:
      init: {run: runs/pretrained, parts: [encoder], strict: false}

The source is a run folder (its selected model, ``checkpoints/best.pt``) or a checkpoint file. Within the chosen
parameter groups (``JointModel.parameter_groups()``: ``encoder``, ``heads.<task>``; default: all of them), every
tensor of the new model whose name and shape match one in the source is copied; the others keep their random
initialisation and are reported with the reason (missing in the source, another shape, a head whose label list
differs: same shape, other classes, so its weights would mean other classes). ``strict: true`` makes any such skip an
error. The feature extractor is never loaded: its normalisation is fitted on the new run's training split.

A resumed run builds its parts (and so applies ``init``) before ``Trainer.restore`` loads its own ``last.pt`` over
them, so the checkpoint wins; ``init`` only matters for a run's first epoch.
"""

from __future__ import annotations

from pathlib import Path

from jasc_core.console import output_console
from jasc_core.contract.json_types import JSONObject
from jasc_core.errors import ConfigError, RunError
from jasc_core.model.pipeline import Labels, Pipeline
from jasc_core.recipes.blocks import InitConfig
from jasc_core.runs.checkpoints import load_checkpoint
from jasc_core.runs.folder import open_run

#: Prefix of the joint model's tensors in a checkpoint's ``model`` entry (``Pipeline.state_dict()``).
MODEL_PREFIX = "model."


def init_source(config: InitConfig) -> Path:
    """The checkpoint file ``model.init`` names (a run folder's ``checkpoints/best.pt``)."""
    if config.run is not None:
        run = open_run(config.run)
        if not run.best.is_file():
            raise ConfigError(f"model.init.run: {config.run} has no selected model ({run.best} is missing); "
                              f"it has not finished an epoch")
        return run.best
    path = Path(config.checkpoint)
    if not path.is_file():
        raise ConfigError(f"model.init.checkpoint: {path} does not exist")
    return path


def _label_mismatch(part: str, source_labels: JSONObject, labels: Labels) -> str | None:
    if not part.startswith("heads."):
        return None
    task = part.removeprefix("heads.")
    theirs, ours = source_labels.get(task), labels.get(task)
    if theirs is None or ours is None or list(theirs) == list(ours):
        return None
    return f"label list differs (source: {', '.join(theirs)}; here: {', '.join(ours)})"


def load_init(config: InitConfig, pipeline: Pipeline, labels: Labels) -> JSONObject:
    """Copy the matching tensors of ``config``'s source into ``pipeline``'s chosen parts; returns the report."""
    source = init_source(config)
    try:
        checkpoint = load_checkpoint(source)
    except RunError as exc:
        raise ConfigError(f"model.init: {exc}") from None
    weights = {key.removeprefix(MODEL_PREFIX): value for key, value in checkpoint.model.items()
               if key.startswith(MODEL_PREFIX)}
    groups = pipeline.model.parameter_groups()
    chosen = list(groups) if config.parts is None else list(config.parts)
    unknown = [part for part in chosen if part not in groups]
    if unknown:
        raise ConfigError(f"model.init.parts: no part {', '.join(repr(p) for p in unknown)} in this model; "
                          f"parts: {', '.join(groups)}")
    report: JSONObject = {"source": str(source), "parts": {}, "random": [p for p in groups if p not in chosen]}
    for part in chosen:
        state = groups[part].state_dict()
        loaded, skipped = {}, {}
        mismatch = _label_mismatch(part, checkpoint.labels, labels)
        for name, tensor in state.items():
            key = f"{part}.{name}"
            theirs = weights.get(key)
            if mismatch is not None:
                skipped[name] = mismatch
            elif theirs is None:
                skipped[name] = "missing in the source"
            elif tuple(theirs.shape) != tuple(tensor.shape):
                skipped[name] = f"shape mismatch: {list(theirs.shape)} in the source, {list(tensor.shape)} here"
            else:
                loaded[name] = theirs
        if skipped and config.strict:
            name, reason = next(iter(skipped.items()))
            raise ConfigError(f"model.init: {part}.{name}: {reason} (strict: true; set strict: false to skip it, "
                              f"or leave {part} out of parts)")
        groups[part].load_state_dict(loaded, strict=False)
        status = "loaded" if not skipped else ("skipped" if not loaded else "partly loaded")
        report["parts"][part] = {"status": status, "loaded": len(loaded), "skipped": skipped}
    return report


def report_lines(report: JSONObject) -> list[str]:
    """The report as the lines a run prints before training."""
    lines = [f"init from {report['source']}:"]
    for part, entry in report["parts"].items():
        line = f"  {part}: {entry['status']} ({entry['loaded']} tensors"
        if entry["skipped"]:
            reasons = sorted(set(entry["skipped"].values()))
            line += f", {len(entry['skipped'])} skipped: {'; '.join(reasons)}"
        lines.append(line + ")")
    if report["random"]:
        lines.append(f"  left random (not in parts): {', '.join(report['random'])}")
    return lines


def apply_init(config: InitConfig, pipeline: Pipeline, labels: Labels) -> JSONObject:
    """``load_init`` and print its report; returns the report (``run.json`` keeps it under ``init``)."""
    report = load_init(config, pipeline, labels)
    console = output_console(highlight=False)
    for line in report_lines(report):
        console.print(line, markup=False)
    return report
