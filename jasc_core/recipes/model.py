"""Recipes: YAML files validated by a pydantic model assembled from the registry at run time.

A recipe names registered components only (no import strings, no custom YAML tags). Loading goes:

1. read the YAML safely; ``extends: base.yaml`` (relative to the recipe, or a list of such paths) deep-merges the base
   first; a component block whose ``name`` differs from the base's replaces the base block instead of merging;
2. apply ``--set a.b=value`` overrides (value parsed as a YAML scalar or flow mapping);
3. check every component block names a registered component (``no weighting 'dwaa'; installed: ...``);
4. validate with the assembled model, where each component slot is a union of that kind's ``Config`` models
   discriminated by ``name``, so a third-party component validates exactly like a built-in one;
5. let each component check the whole recipe (``Component.check_recipe``), e.g. a head that cannot serve its task.

Every problem is reported as ``path: problem`` in a ``ConfigError`` (exit code 2 in the CLI).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from jasc_core.contract.components import Component
from jasc_core.contract.config_errors import did_you_mean, format_validation_error
from jasc_core.contract.json_types import JSONMapping, JSONObject, JSONValue
from jasc_core.contract.registry import Registry, get_registry
from jasc_core.contract.slots import ComponentSlot
from jasc_core.contract.tasks import TASKS
from jasc_core.errors import ConfigError, JascError
from jasc_core.recipes.blocks import (
    DistillConfig,
    EvaluateConfig,
    InitConfig,
    OutputConfig,
    TrainConfig,
)
from jasc_core.recipes.files import apply_sets, load_raw

#: Top-level component slots: recipe path -> component kind.
TOP_SLOTS: dict[str, str] = {"data": "dataset", "features": "features", "weighting": "weighting", "schedule": "schedule"}
#: The core's own blocks, each a pydantic model (their ``ComponentSlot`` fields are filled in at assembly).
CORE_BLOCKS: dict[str, type[BaseModel]] = {"train": TrainConfig, "evaluate": EvaluateConfig, "output": OutputConfig}
BLOCK_ORDER = ("description", "seed", "data", "features", "augment", "model", "weighting", "schedule", "distill",
               "train", "evaluate", "output", "log")


# -- assembling the model ------------------------------------------------------------------------------------------


def _block_model(info_cls: type[Component], name: str, kind: str) -> type[BaseModel]:
    return create_model(
        f"{kind}:{name}",
        __base__=info_cls.Config,
        __doc__=info_cls.description() or None,
        name=(Literal[name], Field(description=f"{kind} component")),  # type: ignore[valid-type]
    )


def kind_union(registry: Registry, kind: str) -> object:
    """The union of every registered block of ``kind``, discriminated by ``name``."""
    members = [
        _block_model(info.cls, info.name, kind) for info in registry.components(kind) if not info.conflicts
    ]
    if not members:
        return dict[str, Any]  # nothing registered: the name check has already reported it
    if len(members) == 1:
        return members[0]
    return Annotated[Union[tuple(members)], Field(discriminator="name")]  # noqa: UP007


def _named(entry: object) -> object:
    """``log: [tensorboard]``: a bare name is the block ``{name: tensorboard}`` (every option at its default)."""
    return {"name": entry} if isinstance(entry, str) else entry


def expand_short_forms(data: JSONMapping) -> JSONObject:
    """The raw recipe with each bare logger name of ``log`` written as its block, as the model reads it."""
    expanded = dict(data)
    if isinstance(expanded.get("log"), list):
        expanded["log"] = [_named(entry) for entry in expanded["log"]]
    return expanded


def _fill_slots(model: type[BaseModel], registry: Registry) -> type[BaseModel]:
    overrides = {}
    for field_name, field in model.model_fields.items():
        slot = next((m for m in field.metadata if isinstance(m, ComponentSlot)), None)
        if slot is not None:
            overrides[field_name] = (
                Union[kind_union(registry, slot.kind), None],  # noqa: UP007
                Field(field.default, description=field.description),
            )
    if not overrides:
        return model
    return create_model(model.__name__, __base__=model, **overrides)


def slot_fields(model: type[BaseModel]) -> dict[str, str]:
    """Fields of a core block that hold component blocks: field name -> kind."""
    return {
        name: slot.kind
        for name, field in model.model_fields.items()
        for slot in field.metadata
        if isinstance(slot, ComponentSlot)
    }


def recipe_model(registry: Registry | None = None) -> type[BaseModel]:
    """The pydantic model of a recipe for what is installed now."""
    registry = registry or get_registry()
    strict = ConfigDict(extra="forbid")
    head_union = kind_union(registry, "head")
    heads = create_model(
        "Heads",
        __config__=strict,
        **{task: (Union[head_union, None], Field(None, description=f"{task} head"))  # noqa: UP007
           for task in TASKS},
    )
    model_block = create_model(
        "Model",
        __config__=strict,
        encoder=(kind_union(registry, "encoder"), Field(description="the shared encoder")),
        heads=(heads, Field(description="one head per task; at least one")),
        init=(InitConfig | None, Field(None, description="load weights of another run before training (fine-tuning)")),
    )
    fields: dict[str, object] = {
        "description": (str, Field("", description="what this recipe reproduces")),
        "seed": (int, Field(0, ge=0, description="random seed")),
        "data": (kind_union(registry, "dataset"), Field(description="the dataset")),
        "features": (kind_union(registry, "features"), Field(description="the feature extractor")),
        "model": (model_block, Field(description="encoder and task heads")),
        "weighting": (kind_union(registry, "weighting"), Field(description="how task losses are combined")),
        "schedule": (kind_union(registry, "schedule"), Field(description="which tasks and parameters train when")),
    }
    for block, model in CORE_BLOCKS.items():
        filled = _fill_slots(model, registry)
        fields[block] = (filled, Field(default_factory=filled))
    fields["distill"] = (DistillConfig | None, Field(None, description="distil from the outputs of finished runs"))
    logger = Annotated[kind_union(registry, "logger"), BeforeValidator(_named)]
    fields["log"] = (list[logger], Field(default_factory=list,  # type: ignore[valid-type]
                                         description="loggers that follow the run: names or {name, <option>: ...}"))
    fields["augment"] = (list[kind_union(registry, "augment")],  # type: ignore[misc]
                         Field(default_factory=list, description="feature augmentations, in order, training only"))
    return create_model("Recipe", __config__=strict, **fields)


def component_paths(data: JSONMapping) -> list[tuple[tuple[str, ...], str]]:
    """Where component blocks sit in a raw recipe: (path, kind) pairs, including optional core slots."""
    paths: list[tuple[tuple[str, ...], str]] = [((key,), kind) for key, kind in TOP_SLOTS.items()]
    paths.append((("model", "encoder"), "encoder"))
    heads = data.get("model", {}).get("heads") if isinstance(data.get("model"), dict) else None
    if isinstance(heads, dict):
        paths += [(("model", "heads", task), "head") for task in heads if task in TASKS]
    for block, model in CORE_BLOCKS.items():
        paths += [((block, field), kind) for field, kind in slot_fields(model).items()]
    for block, kind in (("augment", "augment"), ("log", "logger")):
        entries = data.get(block)
        if isinstance(entries, list):
            paths += [((block, i), kind) for i in range(len(entries))]
    return paths


def _dotted(path: Sequence[str | int]) -> str:
    """``("model", "heads", "event")`` -> ``model.heads.event``; list items as ``augment[0]``."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _lookup(data: JSONMapping, path: Sequence[str | int]) -> JSONValue:
    node: object = data
    for key in path:
        if isinstance(node, list) and isinstance(key, int) and key < len(node) or isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return None
    return node


def check_names(data: JSONMapping, registry: Registry) -> list[str]:
    """Problems with the ``name`` of every component block present in the raw recipe."""
    problems = []
    for path, kind in component_paths(data):
        block = _lookup(data, path)
        dotted = _dotted(path)
        if block is None:
            continue  # a missing required block is reported by the model
        if not isinstance(block, dict):
            problems.append(f"{dotted}: expected a block {{name: ..., <fields>}}, got {type(block).__name__} {block!r}")
            continue
        name = block.get("name")
        if name is None:
            names = ", ".join(registry.names(kind)) or "(none installed)"
            problems.append(f"{dotted}.name: required, missing; {kind} components: {names}")
        elif not isinstance(name, str):
            problems.append(f"{dotted}.name: expected a component name, got {name!r}")
        else:
            try:
                registry.info(kind, name)
            except JascError as exc:
                problems.append(f"{dotted}.name: {exc}")
    return problems


def _tag_positions(data: JSONMapping) -> list[tuple[tuple[str | int, ...], int]]:
    """Locations where pydantic inserts a discriminator tag into error locs (to remove them from messages)."""
    drop = []
    for path, _kind in component_paths(data):
        block = _lookup(data, path)
        if isinstance(block, dict) and isinstance(block.get("name"), str):
            drop.append(((*path, block["name"]), len(path)))
    return drop


# -- the public API ------------------------------------------------------------------------------------------------


def validate_recipe(
    data: JSONMapping, *, registry: Registry | None = None, set_paths: Sequence[str] = (), source: str = ""
) -> BaseModel:
    """Validate raw recipe data; raises ``ConfigError`` listing every problem."""
    registry = registry or get_registry()
    data = expand_short_forms(data)
    unknown = [key for key in data if key not in BLOCK_ORDER]
    problems = [f"{key}: unknown block{did_you_mean(key, list(BLOCK_ORDER))}" for key in unknown]
    name_problems = check_names(data, registry)
    problems += name_problems
    # Blocks whose name is already reported would only add noise about union tags below.
    # (pydantic writes list items as ``log.0``, the name check as ``log[0]``).
    reported = tuple(re.sub(r"\[(\d+)\]", r".\1", problem.split(":", 1)[0]).removesuffix(".name")
                     for problem in name_problems)
    model = recipe_model(registry)
    try:
        recipe = model.model_validate({key: value for key, value in data.items() if key not in unknown})
    except Exception as exc:
        lines = format_validation_error(exc, model=model, drop=_tag_positions(data)).splitlines()
        problems += [line for line in lines if not _under(line.split(":", 1)[0], reported)]
    else:
        if not problems:
            problems += check_recipe(recipe, registry)
        if not problems:
            return recipe
    raise ConfigError(_header(source) + "\n".join(_tag_sets(problems, set_paths)))


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == prefix or path.startswith(prefix + ".") for prefix in prefixes)


def check_recipe(recipe: BaseModel, registry: Registry) -> list[str]:
    """Cross-block checks: at least one head, each head serves its task, and each component's own check."""
    problems = []
    heads = {task: block for task, block in recipe.model.heads if block is not None}
    if not heads:
        problems.append(f"model.heads: a model needs at least one head ({', '.join(TASKS)})")
    for task, block in heads.items():
        cls = registry.component("head", block.name)
        if task not in cls.tasks:
            problems.append(f"model.heads.{task}: head '{block.name}' serves {', '.join(cls.tasks)}, not {task}")
    for path, kind in component_paths(recipe.model_dump()):
        block = _lookup_model(recipe, path)
        if block is None:
            continue
        cls = registry.component(kind, block.name)
        problems += [f"{_dotted(path)}: {problem}" for problem in cls.check_recipe(block, recipe)]
    return problems + check_loggers(recipe, registry)


def check_loggers(recipe: BaseModel, registry: Registry) -> list[str]:
    """Each logger is listed once (its name and options were validated with the other component blocks); then the
    plugins' own checks of the resolved recipe (``jasc_check_recipe``: e.g. a logger's optional dependency)."""
    problems, seen = [], set()
    for index, entry in enumerate(recipe.log):
        if entry.name in seen:
            problems.append(f"log[{index}].name: '{entry.name}' is listed twice")
        seen.add(entry.name)
    if problems:
        return problems
    return [problem for found in registry.hook.jasc_check_recipe(recipe=resolved_dict(recipe)) for problem in found]


def _lookup_model(recipe: BaseModel, path: Sequence[str | int]) -> BaseModel | None:
    node: object = recipe
    for key in path:
        node = node[key] if isinstance(key, int) and isinstance(node, list) else getattr(node, key, None)
        if node is None:
            return None
    return node


def _header(source: str) -> str:
    return f"{source}: invalid recipe\n" if source else ""


def _tag_sets(problems: list[str], set_paths: Sequence[str]) -> list[str]:
    tagged = []
    for problem in problems:
        path = problem.split(":", 1)[0]
        origin = next((s for s in set_paths if path == s or path.startswith(s + ".") or s.startswith(path + ".")), None)
        tagged.append(f"{problem} (from --set {origin})" if origin else problem)
    return tagged


#: The blocks a runnable recipe must hold; a file that sets only others is a base for recipes to extend.
REQUIRED_BLOCKS = ("data", "features", "model", "weighting", "schedule")


class BaseRecipeError(ConfigError):
    """The recipe is a valid base: everything it sets validates, but it lacks required blocks (``missing``).

    The message keeps the usual ``block: required`` lines (a block left out by mistake reads as before) and adds
    ``summary``, the sentence ``jasc validate`` prints for a base."""

    def __init__(self, path: str | Path, missing: Sequence[str], problems: str) -> None:
        self.missing = list(missing)
        blocks = ", ".join(self.missing)
        self.summary = (f"{path} is a base recipe: the blocks it sets are valid, but it has no {blocks}, so it does "
                        f"not run on its own. A recipe extends it (extends: {Path(path).name}, relative to that "
                        f"recipe) and adds {blocks}.")
        super().__init__(f"{problems}\n{self.summary}")


def load_recipe(path: str | Path, sets: Iterable[str] = (), *, registry: Registry | None = None) -> BaseModel:
    """Read, merge, override and validate a recipe file (``BaseRecipeError`` for a valid base recipe)."""
    data = load_raw(path)
    set_paths = apply_sets(data, sets)
    try:
        return validate_recipe(data, registry=registry, set_paths=set_paths, source=str(path))
    except ConfigError as exc:
        missing = [block for block in REQUIRED_BLOCKS if block not in data]
        problems = str(exc).splitlines()[1:]
        if missing and all(line.split(":", 1)[0] in missing for line in problems):
            raise BaseRecipeError(path, missing, str(exc)) from None
        raise


def resolved_dict(recipe: BaseModel) -> JSONObject:
    """The fully resolved recipe as plain data (every default filled in), in block order."""
    dumped = recipe.model_dump(mode="json")
    return {key: dumped[key] for key in BLOCK_ORDER if key in dumped}


def identity_dict(recipe: BaseModel) -> JSONObject:
    """The recipe as plain data without the values left at their defaults: what a run's ``recipe_hash`` covers.

    Leaving defaults out keeps a run resumable by a newer jasc that adds a field (with a default) to a block or to a
    component's config; any value a recipe sets, or a default it changes, still changes the identity.
    """
    dumped = recipe.model_dump(mode="json", exclude_defaults=True)
    return {key: dumped[key] for key in BLOCK_ORDER if key in dumped}


def dump_yaml(recipe: BaseModel) -> str:
    """The resolved recipe as YAML; loading it back validates to the same recipe."""
    return yaml.safe_dump(resolved_dict(recipe), sort_keys=False, default_flow_style=False)


def block_name_and_config(block: BaseModel | Mapping[str, object], where: str) -> tuple[str, dict[str, object]]:
    """A component block (a recipe's pydantic block or a plain ``{name: ..., **config}`` dict) -> (name, config)."""
    data = block.model_dump() if isinstance(block, BaseModel) else dict(block)
    name = data.pop("name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: missing; every component block names a registered component")
    return name, data


def build(kind: str, block: BaseModel | Mapping[str, object], registry: Registry | None = None,
          **kwargs: object) -> Component:
    """An instance of the component a recipe block names, built with ``kwargs`` (sizes only the caller knows)."""
    registry = registry or get_registry()
    name, config = block_name_and_config(block, kind)
    return registry.component(kind, name)(config, **kwargs)


def recipe_schema(registry: Registry | None = None) -> JSONObject:
    """JSON Schema of recipes for what is installed now (for editors)."""
    schema = recipe_model(registry).model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "jasc recipe"
    schema.setdefault("properties", {})["extends"] = {
        "description": "base recipe(s) to deep-merge first, relative to this file",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    }
    return schema


__all__ = [
    "build",
    "dump_yaml",
    "load_recipe",
    "recipe_model",
    "recipe_schema",
    "resolved_dict",
    "validate_recipe",
]
