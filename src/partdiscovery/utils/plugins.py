"""Plugins: modules that register their own backbones, φ, methods, datasets, baselines, refiners, ... .

Registering is importing: a module whose top level calls ``REGISTRY.register(name)`` adds ``name`` to that
registry (README, "Extending"). Python code imports its plugin itself; the command line cannot, so it imports
before parsing:

- the modules of the ``partdiscovery.plugins`` entry-point group of every installed distribution (a plugin
  package declares ``[project.entry-points."partdiscovery.plugins"] mine = "mine.register"``), and
- the modules named in the environment variable ``PARTDISCOVERY_PLUGINS`` (comma-separated, e.g.
  ``PARTDISCOVERY_PLUGINS=myext``), for a module of one's own on ``PYTHONPATH``.

Why both: an installed package should just work, and a one-file experiment should not need packaging.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from partdiscovery.errors import PartDiscoveryError

ENTRY_POINT_GROUP = "partdiscovery.plugins"
ENVIRONMENT_VARIABLE = "PARTDISCOVERY_PLUGINS"


def plugin_modules() -> list[tuple[str, str]]:
    """``(module, where it was named)`` for every plugin: entry points first, then the environment variable."""
    points = entry_points(group=ENTRY_POINT_GROUP)
    found = [(point.value.split(":")[0], f"entry point {point.name!r}") for point in points]
    named = os.environ.get(ENVIRONMENT_VARIABLE, "")
    found += [(name.strip(), ENVIRONMENT_VARIABLE) for name in named.split(",") if name.strip()]
    return found


def load_plugins() -> list[str]:
    """Import every plugin module (:func:`plugin_modules`); returns their names. One that cannot be imported is a
    :class:`PartDiscoveryError` naming it and where it was named (its traceback would hide which plugin failed)."""
    loaded = []
    for module, where in plugin_modules():
        try:
            importlib.import_module(module)
        except Exception as e:  # any error of a plugin's own code: the user's to fix, in one line
            raise PartDiscoveryError(
                f"plugin {module!r} (from {where}): cannot import it ({type(e).__name__}: {e})"
            ) from None
        loaded.append(module)
    return loaded


__all__ = ["ENTRY_POINT_GROUP", "ENVIRONMENT_VARIABLE", "load_plugins", "plugin_modules"]
