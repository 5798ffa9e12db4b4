"""Every public name of ``surgplan`` is the object it names, whatever was imported before."""

from __future__ import annotations

import importlib
import pkgutil
import types

import surgplan


def test_lazy_names_are_not_shadowed_by_submodules() -> None:
    # Importing every submodule first sets package attributes named after them: a public
    # function must never share its name with a module, or it would be replaced by the module.
    for info in pkgutil.walk_packages(surgplan.__path__, "surgplan."):
        if info.name.startswith(("surgplan.cli", "surgplan.phantom")):
            continue
        importlib.import_module(info.name)
    for name in surgplan.__all__:
        value = getattr(surgplan, name)
        assert not isinstance(value, types.ModuleType), f"surgplan.{name} is a module"
    from surgplan import import_model, import_scan

    assert callable(import_scan) and callable(import_model)
