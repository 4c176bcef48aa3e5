"""The dataset registry: dataset spec strings (``PATH``, ``cub:PATH``, ``pascal-part:CLASS:PATH``) -> datasets.

Why a registry of *kinds* rather than of bare factories: what callers need to know about a kind before
opening it (its dataset class, hence its default evaluation protocol) is declared once, where the kind is
registered, instead of being guessed from the spec string by each caller.

Each dataset module registers its kind with :func:`register_dataset`; importing
:mod:`partdiscovery.data` registers them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from partdiscovery.data.base import PartDataset
from partdiscovery.errors import DatasetError
from partdiscovery.utils.registry import Registry

Opener = Callable[..., PartDataset]
"""``opener(args, split, **kwargs) -> PartDataset``; ``args`` is the spec after ``NAME:``."""


@dataclass(frozen=True)
class DatasetKind:
    """A registered dataset kind: its spec name, its dataset class and the function that opens a spec.

    Calling the kind opens a dataset: ``kind(args, split, **kwargs)``.
    """

    name: str
    dataset_class: type[PartDataset]
    opener: Opener

    @property
    def default_protocol(self) -> str:
        """The evaluation protocol used when none is given (the dataset class declares it)."""
        return self.dataset_class.default_protocol

    def __call__(self, args: str, split: str, **kwargs) -> PartDataset:
        return self.opener(args, split, **kwargs)


DATASETS: Registry[PartDataset] = Registry("dataset")
"""Name -> :class:`DatasetKind` (a kind is the factory the generic registry stores)."""


def register_dataset(name: str, dataset_class: type[PartDataset]) -> Callable[[Opener], Opener]:
    """Register ``opener(args, split, **kwargs)`` as the dataset kind ``name`` of ``dataset_class``.

    Example:
        >>> @register_dataset("mydata", MyDataset)  # doctest: +SKIP
        ... def _open_mydata(args, split, **kwargs): return MyDataset(args, split, **kwargs)
    """

    def decorator(opener: Opener) -> Opener:
        DATASETS.register(name)(DatasetKind(name, dataset_class, opener))
        return opener

    return decorator


def list_datasets() -> list[str]:
    """The registered dataset kinds, sorted (``cub``, ``deepfashion``, ``folder``, ``pascal-part``)."""
    return DATASETS.names()


def _resolve(spec: str) -> tuple[DatasetKind, str]:
    """``(kind, args)`` of a spec; a plain path (also ``C:\\...``, ``./a:b``) is a part folder."""
    name, sep, args = spec.partition(":")
    if sep and name in DATASETS:
        return DATASETS.get(name), args
    if sep and not Path(spec).exists() and "/" not in name and len(name) > 1:
        raise DatasetError(
            f"{spec}: unknown dataset kind {name!r}; choose one of: {', '.join(list_datasets())} "
            "(or give a plain path to a part folder)"
        )
    return DATASETS.get("folder"), spec


def dataset_kind(spec: str | Path) -> DatasetKind:
    """The kind a spec names, without opening it, e.g. ``dataset_kind("cub:/data/CUB").default_protocol``.

    Raises :class:`DatasetError` listing the registered kinds for an unknown ``NAME:``.
    """
    return _resolve(str(spec))[0]


def open_dataset(spec: str | Path, split: str = "train", **kwargs) -> PartDataset:
    """Open ``spec`` (``PATH`` | ``folder:PATH`` | ``NAME:ARGS``) at ``split``.

    Keyword arguments go to the dataset class (e.g. ``validate=False``, ``require_parts=True``).
    """
    kind, args = _resolve(str(spec))
    return kind(args, split, **kwargs)


def dataset_root(spec: str | Path) -> Path | None:
    """The folder a dataset spec reads from, without opening it (the path of ``PATH``, ``folder:PATH``,
    ``cub:PATH``, ``pascal-part:CLASS:PATH``): commands refuse outputs inside it before any work."""
    spec = str(spec)
    name, sep, args = spec.partition(":")
    if sep and name in DATASETS:
        path = args.rsplit(":", 1)[-1] if name != "folder" else args
        return Path(path) if path else None
    return Path(spec) if spec else None


def parse_spec_options(args: str, allowed: Iterable[str]) -> tuple[str, dict]:
    """``PATH?key=value&key=value`` -> ``(PATH, {key: value})``; ``classes`` becomes a list of ints.

    Lets the command line pass dataset options, e.g. ``cub:/data/CUB_200_2011?classes=1`` (CUB-001).
    Text after ``?`` is an option string only when every key is one of ``allowed``.
    """
    path, sep, query = args.rpartition("?")
    if not sep or not query:
        return args, {}
    options: dict = {}
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            return args, {}
        options[key] = value
    if "classes" in options:
        try:
            options["classes"] = [int(c) for c in options["classes"].split(",") if c.strip()]
        except ValueError:
            raise DatasetError(
                f"{args}: classes must be comma-separated class ids, e.g. ?classes=1,2,3"
            ) from None
    return path, options
