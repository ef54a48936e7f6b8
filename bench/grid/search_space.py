"""Search spaces of `reprogbench sweep`: which hyperparameters a cell's sweep samples, and from what.

A space maps a parameter, either a hyperparameter (`lr`, `batch_size`, `epochs`, `weight_decay`, ...) or one of
the method's parameters (`lam`, `input_size`, `label_map`, ...), to one distribution:

    lr: {loguniform: [1.0e-4, 0.1]}     low > 0; log-uniform between low and high
    weight_decay: {uniform: [0, 1.0e-3]}
    input_size: {int: [12, 20]}         an integer, both ends included
    label_map: {choice: [first_k, random, learned]}

A method declares a default space in its code (`Method.search_space`); a method entry of a grid replaces it with
`search: {...}`. Nothing here knows Ray: `launch.sweep` turns a space into Ray Tune's.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any


class SearchSpaceError(ValueError):
    """A space that cannot be sampled; the message is one line naming the parameter and what is allowed."""


RANGES = ("loguniform", "uniform", "int")
KINDS = (*RANGES, "choice")
EXAMPLE = "lr: {loguniform: [1.0e-4, 0.1]}"

Space = dict[str, dict[str, list]]  # parameter -> {kind: values}: plain data, JSON- and pickle-friendly


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_space(raw: Any, allowed: Sequence[str], where: str) -> Space:
    """Validate a declared space; raises SearchSpaceError on an unknown parameter, low > high, and the like."""
    if not isinstance(raw, Mapping) or not raw:
        raise SearchSpaceError(f"{where}: a search space maps parameters to distributions, e.g. {EXAMPLE}")
    space: Space = {}
    for name, dist in raw.items():
        at = f"{where}.{name}"
        if name not in allowed:
            raise SearchSpaceError(f"{at}: unknown parameter; searchable here: {', '.join(sorted(allowed))}")
        if not isinstance(dist, Mapping) or len(dist) != 1 or next(iter(dist)) not in KINDS:
            raise SearchSpaceError(f"{at}: give one of {', '.join(KINDS)} with its values, e.g. {EXAMPLE}")
        ((kind, values),) = dist.items()
        if kind == "choice":
            if not isinstance(values, list) or not values:
                raise SearchSpaceError(f"{at}.choice: takes a non-empty list of values")
            if not all(isinstance(v, str | int | float | bool) for v in values):
                raise SearchSpaceError(f"{at}.choice: values must be numbers, strings or booleans (got {values!r})")
        else:
            _check_range(at, kind, values)
        space[name] = {kind: list(values)}
    return space


def _check_range(at: str, kind: str, values: Any) -> None:
    if not (isinstance(values, list) and len(values) == 2 and all(_number(v) for v in values)):
        hint = " (YAML reads 1e-4 as text: write 1.0e-4)" if any(isinstance(v, str) for v in values or []) else ""
        raise SearchSpaceError(f"{at}.{kind}: takes [low, high], two numbers (got {values!r}){hint}")
    low, high = values
    if kind == "int" and not all(isinstance(v, int) for v in values):
        raise SearchSpaceError(f"{at}.int: takes two integers (got {values!r})")
    if low > high:
        raise SearchSpaceError(f"{at}.{kind}: low {low} is above high {high}")
    if low == high:
        raise SearchSpaceError(f"{at}.{kind}: low equals high ({low}): a fixed value belongs in the method's "
                               "parameters or hparams, not in its search space")
    if kind == "loguniform" and low <= 0:
        raise SearchSpaceError(f"{at}.loguniform: low must be above 0 (got {low}); use uniform for a range from 0")


def values_to_check(space: Space) -> Iterator[tuple[str, Any]]:
    """(parameter, value) for every end of a range and every choice: each must make a valid cell."""
    for name, dist in space.items():
        ((_, values),) = dist.items()
        for value in values:
            yield name, value


def max_of(space: Space, name: str, default: int) -> int:
    """The largest value a parameter can take (e.g. the epochs budget ASHA stops trials within)."""
    if name not in space:
        return default
    ((_, values),) = space[name].items()
    return int(max(values))
