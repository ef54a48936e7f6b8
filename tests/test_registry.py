"""bench.registry: names, the duplicate warning, the unknown-name error, stored metadata, and discovery of a
package's modules."""
from __future__ import annotations

import sys
import warnings

import pytest

from bench.registry import Registry, UnknownName


def test_duplicate_registration_warns_and_the_later_wins():
    reg: Registry[int] = Registry("x")
    reg.register("a", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.register("b", 2)  # a new name: no warning
    with pytest.warns(UserWarning, match="x 'a' registered twice"):
        reg.register("a", 3)
    assert reg.get("a") == 3 and reg.names() == ["a", "b"] and list(reg) == ["a", "b"]
    assert "a" in reg and "c" not in reg
    with pytest.raises(UnknownName, match="unknown x 'c'; known: a, b"):
        reg.get("c")


def test_the_decorator_stores_its_metadata_beside_the_entry():
    reg: Registry = Registry("thing")

    @reg.decorator(size=3, colour="red")
    def second():
        return 2

    @reg.decorator(name="first")
    def _one():
        return 1

    assert reg.get("second") is second and reg.metadata("second") == {"size": 3, "colour": "red"}
    assert reg.metadata("first") == {} and reg.items() == [("first", _one), ("second", second)]
    assert reg.names_in_registration_order() == ["second", "first"]
    with pytest.raises(TypeError):
        reg.metadata("second")["size"] = 4  # read-only: an entry's declaration is not edited after the fact
    with pytest.raises(UnknownName, match="unknown thing 'third'; known: first, second"):
        reg.metadata("third")


def test_a_registry_imports_every_module_of_its_package_before_the_first_lookup(tmp_path, monkeypatch):
    package = tmp_path / "plugins_for_test"
    (package / "nested").mkdir(parents=True)
    (package / "__init__.py").write_text("from bench.registry import Registry\nREG = Registry('plugin', "
                                         "package='plugins_for_test')\n")
    (package / "alpha.py").write_text("from plugins_for_test import REG\nREG.register('alpha', 1, kind='a')\n")
    (package / "nested" / "__init__.py").write_text("")
    (package / "nested" / "beta.py").write_text("from plugins_for_test import REG\nREG.register('beta', 2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import plugins_for_test

        assert "plugins_for_test.alpha" not in sys.modules  # nothing imported until asked
        assert plugins_for_test.REG.names() == ["alpha", "beta"]  # no import list named them
        assert plugins_for_test.REG.metadata("alpha") == {"kind": "a"}
    finally:
        for name in [m for m in sys.modules if m.startswith("plugins_for_test")]:
            del sys.modules[name]
