"""Method registry. Every module of this package is imported (discovered) before the first lookup, so a module
here that declares a method, a label mapping or an input program registers it."""
from bench.methods.base import METHODS, FrozenBackboneModel, Method, MethodModel, MethodParams, register_method


def list_methods() -> list[str]:
    return METHODS.names()


def grid_methods() -> list[str]:
    """The methods a grid's `methods:` entry may name: all but the one that makes original models."""
    return [n for n in METHODS.names() if not METHODS.get(n).makes_original]


def original_maker() -> Method:
    """The method whose cells train an original model that other cells reprogram (a grid's pretrain cells)."""
    return next(METHODS.get(n) for n in METHODS.names() if METHODS.get(n).makes_original)


__all__ = ["METHODS", "FrozenBackboneModel", "Method", "MethodModel", "MethodParams", "grid_methods", "list_methods",
           "original_maker", "register_method"]
