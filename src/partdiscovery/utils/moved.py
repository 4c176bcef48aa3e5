"""Names that moved to another module keep working for a while, with a ``DeprecationWarning``.

A module lists its moved names and installs the returned function as its module ``__getattr__`` (PEP 562), so
``from partdiscovery.viz.report import REPORT_FILE`` still works and tells the user the new place::

    __getattr__ = moved_names(__name__, {"REPORT_FILE": "partdiscovery.runs"})
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved_names(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds ``name`` in ``names[name]`` (a module path), warning once per use.

    Args:
        module: the old module's ``__name__`` (named in the warning and the ``AttributeError``).
        names: ``{old name: new module}``; the name is the same in the new module unless given as
            ``"package.module:new_name"``.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        target, _, new_name = names[name].partition(":")
        new_name = new_name or name
        warnings.warn(
            f"{module}.{name} moved to {target}.{new_name}; the old name will be removed in 1.0",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(target), new_name)

    return __getattr__
