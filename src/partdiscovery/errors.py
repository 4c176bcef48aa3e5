"""Errors the CLI turns into one clear line on standard error and exit status 2 (no stack trace).

Every problem a user can fix is a :class:`PartDiscoveryError`; anything else that escapes is a bug and
keeps its traceback. Argument and config errors are also ``ValueError``, so library callers that
catch ``ValueError`` keep working.
"""

from __future__ import annotations


class PartDiscoveryError(Exception):
    """Base class: a problem the user can fix (bad input, missing file, wrong option)."""


class InvalidArgumentError(PartDiscoveryError, ValueError):
    """An argument out of its range or of the wrong kind (``--parts 0``, ``--device banana``)."""


class DatasetError(PartDiscoveryError):
    """A dataset folder or file is missing, unreadable or inconsistent. The message names the file."""


class CheckpointError(PartDiscoveryError):
    """A checkpoint is missing, corrupt, or does not match the requested model."""


class WeightsUnavailableError(PartDiscoveryError):
    """Pretrained weights are neither cached nor downloadable; the message says how to pass a local file."""


class ConfigError(InvalidArgumentError):
    """An unknown config key, a wrong type, or an invalid value."""


class UnknownNameError(InvalidArgumentError, KeyError):
    """A name no registry holds (a backbone, φ, method, dataset kind, baseline, ...); the message lists the
    registered names. Also a ``KeyError``, as a registry is a mapping of names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text.
        return str(self.args[0]) if self.args else ""


class OutputPathError(PartDiscoveryError):
    """An output path that may not be written: it holds the user's files, a previous result that needs
    ``--overwrite``, lies inside the input data, or cannot be created."""


class RunLockedError(OutputPathError):
    """Another process holds the lock of a folder being written: a run folder (two trainings would mix their
    files), a predictions or a mask folder (each write would remove the other's files as stale)."""


def some_of(names, shown: int = 3) -> str:
    """``"a, b, c and 4 more"``: the first ``shown`` of ``names`` for a message, and how many are left out (one line
    however many files a problem concerns)."""
    names = [str(name) for name in names]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
