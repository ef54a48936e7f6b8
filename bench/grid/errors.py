"""GridError and the checks every part of a grid shares: a pydantic error as one line, a name among the known ones,
keys that are names."""
from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError, ValidationInfo, field_validator


class GridError(ValueError):
    """A grid that cannot run. The message is one line: file, key, problem, what is allowed."""


def validated(model: type[BaseModel], values: Mapping[str, Any], where: str, also_allowed: tuple = ()) -> BaseModel:
    """`model` made from `values`, or a GridError naming the key at `where`."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise GridError(one_line(exc, model, where, also_allowed)) from None


def one_line(exc: ValidationError, model: type[BaseModel], where: str, also_allowed: tuple = ()) -> str:
    """The first error of a pydantic validation as `key: problem`; an unknown key lists the allowed ones."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    key = f"{where}.{loc}" if where and loc else (where or loc)
    if err["type"] == "extra_forbidden":
        allowed = ", ".join([*also_allowed, *model.model_fields])
        return f"{key}: unknown key; allowed: {allowed}"
    if err["type"] == "missing":
        return f"{key}: required key is missing"
    return f"{key}: {err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})"


def _numeric(annotation: Any) -> bool:
    """int or float (optionally inside Optional/Annotated/Union), and not a field that may be a boolean."""
    seen, stack = set(), [annotation]
    while stack:
        item = stack.pop()
        if item is bool:
            return False
        if item in (int, float):
            seen.add(item)
        stack.extend(typing.get_args(item) if typing.get_origin(item) in (typing.Union, types.UnionType,
                                                                            typing.Annotated) else ())
    return bool(seen)


class NumbersNotBools(BaseModel):
    """The base of every model a grid's values go into: YAML's `true` where a number is expected is a typo, which
    pydantic's lax mode would take as 1 (`lr: true` training at lr 1.0). Strict types throughout would refuse
    `lr: 1e-3` too, which PyYAML reads as a string."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and _numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError("a boolean where a number is expected")
        return value


def check_known(kind: str, name: str, known: list[str], where: str) -> None:
    if name not in known:
        raise GridError(f"{where}: unknown {kind} {name!r}; known: {', '.join(known)}")


def check_keys(value: Any, where: str) -> None:
    """Every mapping key is a name: `1: 2` or `null: x` in a grid is a typo, and later code joins keys as text."""
    stack = [(value, where)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise GridError(f"{where or 'the grid'}: key {key!r} is not a name; keys are strings")
                stack.append((item, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))
