"""Every hook a plugin module defines reaches pytest: the entry point loads archmatrix.plugin, and a hook it
does not re-export is never called (the background builds' xdist hook once was not)."""

import importlib
import pkgutil

import archmatrix.plugin


def test_every_hook_of_the_plugins_modules_is_on_the_plugin_pytest_loads():
    missing = []
    for module_info in pkgutil.iter_modules(archmatrix.plugin.__path__):
        module = importlib.import_module(f"archmatrix.plugin.{module_info.name}")
        for name, value in vars(module).items():
            if name.startswith("pytest_") and callable(value) and value.__module__ == module.__name__:
                if getattr(archmatrix.plugin, name, None) is not value:
                    missing.append(f"{module.__name__}.{name}")
    assert missing == []
