"""A tiny name -> factory registry, shared by backbones, feature extractors, datasets and methods.

Why: the reference code dispatched on strings with ``if/elif`` chains that fell through to
``print("Model not exist")``. A registry gives ``list_*()`` for free and one error message that
lists every valid name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from partdiscovery.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories.

    Example:
        >>> BACKBONES = Registry("backbone")
        >>> @BACKBONES.register("tiny")
        ... def tiny(**kw): ...
        >>> BACKBONES.names()
        ['tiny']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str, replace: bool = False) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """A decorator that registers its factory as ``name``. A name already taken is an error (two plugins
        would otherwise override each other silently) unless ``replace``: to swap a built-in, or to run a
        notebook cell that registers again."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries and not replace:
                raise ValueError(
                    f"{self.kind} {name!r} is registered twice (register({name!r}, replace=True) replaces it)"
                )
            self._entries[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def build(self, name: str, *args, **kwargs) -> T:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def config_entry(registry: Registry[T], name: str, key: str) -> Callable[..., T]:
    """``registry``'s entry for the value ``name`` of config key ``key``; an unknown name is a
    :class:`~partdiscovery.errors.ConfigError` that names the key and lists the registered names."""
    try:
        return registry.get(name)
    except UnknownNameError as e:
        message = str(e)
        raise ConfigError(message if registry.kind == key else f"{key}: {message}") from None


__all__ = ["Registry", "UnknownNameError", "config_entry"]
