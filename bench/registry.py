"""One registry per concept (datasets, backbones, methods, label mappings, ...), in the style of timm's registry.

An entry is a short decorated factory; the metadata it declares is stored beside it (`metadata(name)`);
`get(name)` is the one door in and an unknown name raises an error that lists every registered one. A registry
given a `package` imports every module of that package (pkgutil) before its first lookup, so a new entry is
found by being in a file there: no hand-kept import list.
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, Optional, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """A name that is not in a registry; the message lists what is."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def import_submodules(package: str) -> None:
    """Import every module under `package` (recursively), so that the entries they declare register."""
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        importlib.import_module(info.name)


@dataclass
class Registry(Generic[T]):
    kind: str  # "dataset", "backbone", "method": used in error messages
    package: Optional[str] = None  # where its entries live: imported whole before the first lookup
    _entries: dict[str, T] = field(default_factory=dict)
    _metadata: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    _discovered: bool = False

    def register(self, name: str, entry: T, **metadata: Any) -> T:
        if name in self._entries:
            warnings.warn(f"{self.kind} {name!r} registered twice; the later one wins", stacklevel=3)
        self._entries[name] = entry
        self._metadata[name] = MappingProxyType(dict(metadata))
        return entry

    def decorator(self, name: str | None = None, **metadata: Any) -> Callable[[T], T]:
        """`@REGISTRY.decorator(**metadata)` registers a factory under its own name (or `name`)."""

        def wrap(fn: T) -> T:
            return self.register(name or fn.__name__, fn, **metadata)  # type: ignore[attr-defined]

        return wrap

    def _discover(self) -> None:
        if self.package is not None and not self._discovered:
            self._discovered = True  # first: a module being imported may itself look an entry up
            try:
                import_submodules(self.package)
            except BaseException:
                self._discovered = False  # a module that failed to import: fail again next time, never half-listed
                raise

    def get(self, name: str) -> T:
        self._discover()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            ) from None

    def metadata(self, name: str) -> Mapping[str, Any]:
        """What the entry declared when it registered (read-only)."""
        self.get(name)  # an unknown name: the error that lists the known ones
        return self._metadata[name]

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def names_in_registration_order(self) -> list[str]:
        """For a listing whose order means something (e.g. the order of chapters); `names()` is sorted."""
        self._discover()
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
