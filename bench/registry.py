"""One registry per concept (datasets, backbones, methods), in the style of timm's model registry.

An entry is a short decorated factory; its metadata sits beside it; `get(name)` is the one door in and an
unknown name raises an error that lists every registered one.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """A name that is not in a registry; the message lists what is."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass
class Registry(Generic[T]):
    kind: str  # "dataset", "backbone", "method": used in error messages
    _entries: dict[str, T] = field(default_factory=dict)

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            warnings.warn(f"{self.kind} {name!r} registered twice; the later one wins", stacklevel=3)
        self._entries[name] = entry
        return entry

    def decorator(self, name: str | None = None, **metadata: Any) -> Callable[[T], T]:
        """`@REGISTRY.decorator()` registers a factory under its own name (or `name`)."""

        def wrap(fn: T) -> T:
            return self.register(name or fn.__name__, fn)  # type: ignore[attr-defined]

        return wrap

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
