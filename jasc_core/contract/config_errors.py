"""Turning pydantic validation errors into one short line per problem: ``path: problem[; did you mean 'x'?]``."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

#: Where a pydantic error is: field names and list positions (and the union tags pydantic inserts).
Loc = tuple[int | str, ...]


def format_validation_error(
    exc: Exception,
    *,
    prefix: str = "",
    model: type[BaseModel] | None = None,
    component: type | None = None,
    drop: Sequence[tuple[Loc, int]] = (),
) -> str:
    """All problems of ``exc`` as lines. ``drop`` lists (loc prefix, index) pairs of loc elements to remove (the
    discriminator tags pydantic inserts into the locations of union members)."""
    if not isinstance(exc, ValidationError):
        return f"{prefix}: {exc}" if prefix else str(exc)
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        shown = _strip_tags(loc, drop)
        path = ".".join(str(part) for part in ((prefix,) if prefix else ()) + shown)
        lines.append(f"{path or '(recipe)'}: {describe(error, model, loc)}")
    return "\n".join(dict.fromkeys(lines))


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def describe(error: ErrorDetails, model: type[BaseModel] | None, loc: Loc) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        choices = fields_at(model, loc[:-1]) if model is not None else []
        hint = did_you_mean(str(loc[-1]), choices) or (f"; fields: {', '.join(choices)}" if choices else "")
        return f"extra field{hint}"
    if kind == "missing":
        return "required, missing"
    message = error["msg"]
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        options = [part.strip(" '") for part in expected.replace(" or ", ",").split(",") if part.strip(" '")]
        message += did_you_mean(str(error.get("input")), options)
    if "input" in error and not isinstance(error["input"], dict | list):
        message += f" (got {error['input']!r})"
    return message


def _strip_tags(loc: Loc, drop: Sequence[tuple[Loc, int]]) -> Loc:
    for prefix, index in drop:
        if loc[: len(prefix)] == prefix and len(loc) > index:
            return loc[:index] + loc[index + 1 :]
    return loc


def fields_at(model: type[BaseModel] | None, loc: Loc) -> list[str]:
    """The field names of the model that sits at ``loc`` inside ``model`` (following discriminator tags in loc)."""
    current: object = model
    parts = list(loc)
    while parts:
        current = _unwrap(current)
        part = parts.pop(0)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
            continue
        options = _union_members(current)
        if options:  # discriminated union: ``part`` is the tag
            chosen = [m for m in options if _tag_of(m) == part]
            if not chosen:
                return []
            current = chosen[0]
            continue
        if typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
            continue
        if typing.get_origin(current) is list and isinstance(part, int):  # an item of a list block (augment, log)
            current = typing.get_args(current)[0]
            continue
        return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: object) -> object:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _unwrap(args[0])
    return annotation


def _union_members(annotation: object) -> list[type[BaseModel]]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return []


def _tag_of(member: type[BaseModel]) -> object:
    field = member.model_fields.get("name")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None
