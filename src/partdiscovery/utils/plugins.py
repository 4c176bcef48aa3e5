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
import traceback
from importlib.metadata import entry_points

from partdiscovery.errors import PartDiscoveryError

ENTRY_POINT_GROUP = "partdiscovery.plugins"
ENVIRONMENT_VARIABLE = "PARTDISCOVERY_PLUGINS"


def plugin_modules() -> list[tuple[str, str]]:
    """``(module, where it was named)`` for every plugin: entry points first, then the environment variable."""
    points = entry_points(group=ENTRY_POINT_GROUP)
    found = [(point.module, f"entry point {point.name!r}") for point in points]
    named = os.environ.get(ENVIRONMENT_VARIABLE, "")
    found += [(name.strip(), ENVIRONMENT_VARIABLE) for name in named.split(",") if name.strip()]
    return found


def load_plugins() -> list[str]:
    """Import every plugin module (:func:`plugin_modules`); returns their names. One that cannot be imported is a
    :class:`PartDiscoveryError` naming it, where it was named, and the file and line that failed (a traceback
    through importlib would hide which plugin it was)."""
    loaded = []
    for module, where in plugin_modules():
        try:
            importlib.import_module(module)
        except Exception as e:  # any error of a plugin's own code: the user's to fix, in one line
            frames = traceback.extract_tb(e.__traceback__)
            at = f" at {frames[-1].filename}:{frames[-1].lineno}" if len(frames) > 1 else ""
            first_line = str(e).splitlines()[0] if str(e) else ""
            raise PartDiscoveryError(
                f"plugin {module!r} (from {where}): cannot import it ({type(e).__name__}: {first_line}){at}"
            ) from None
        loaded.append(module)
    return loaded


__all__ = ["ENTRY_POINT_GROUP", "ENVIRONMENT_VARIABLE", "load_plugins", "plugin_modules"]
