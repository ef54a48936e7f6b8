"""Method registry. Importing this package registers every method."""
from bench.methods import ar as _ar  # noqa: F401,E402
from bench.methods import blackbox as _blackbox  # noqa: F401,E402
from bench.methods import linear_probe as _linear_probe  # noqa: F401,E402
from bench.methods import scratch as _scratch  # noqa: F401,E402
from bench.methods.base import METHODS, FrozenBackboneModel, Method, MethodModel, MethodParams, register_method


def list_methods() -> list[str]:
    return METHODS.names()


__all__ = ["METHODS", "FrozenBackboneModel", "Method", "MethodModel", "MethodParams", "list_methods", "register_method"]
