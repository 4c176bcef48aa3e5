"""Errors the CLI turns into one clear line on standard error (no stack trace)."""

from __future__ import annotations


class PartDiscoveryError(Exception):
    """Base class: a problem the user can fix (bad input, missing file, wrong option)."""


class DatasetError(PartDiscoveryError):
    """A dataset folder or file is missing, unreadable or inconsistent. The message names the file."""


class CheckpointError(PartDiscoveryError):
    """A checkpoint is missing, corrupt, or does not match the requested model."""


class WeightsUnavailableError(PartDiscoveryError):
    """Pretrained weights are neither cached nor downloadable; the message says how to pass a local file."""


class ConfigError(PartDiscoveryError):
    """An unknown config key, a wrong type, or an invalid value."""
