"""The error classes' contract: every user error is a PartDiscoveryError (the CLI's one-line errors), and argument
and config errors are also ValueError, so library callers that catch ValueError keep working."""

from __future__ import annotations

import inspect

import pytest

from partdiscovery import errors
from partdiscovery.config import Config, with_overrides

CLASSES = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_is_a_user_error_with_a_docstring(cls):
    assert issubclass(cls, errors.PartDiscoveryError)
    assert cls.__doc__ and cls.__doc__.strip()


@pytest.mark.parametrize("cls", [errors.InvalidArgumentError, errors.ConfigError])
def test_argument_and_config_errors_are_value_errors(cls):
    with pytest.raises(ValueError):
        raise cls("bad")


def test_a_lock_is_an_output_path_error():
    assert issubclass(errors.RunLockedError, errors.OutputPathError)


def test_a_bad_override_raises_a_config_error_that_callers_can_catch_as_value_error():
    with pytest.raises(ValueError) as caught:
        with_overrides(Config(), ["loss.no_such_key=1"])
    assert isinstance(caught.value, errors.ConfigError)
    assert "no_such_key" in str(caught.value)


def test_some_of_names_the_first_three_and_counts_the_rest():
    from partdiscovery.errors import some_of

    assert some_of(["a", "b"]) == "a, b"
    assert some_of(["a", "b", "c"]) == "a, b, c"
    assert some_of(f"f{i}" for i in range(7)) == "f0, f1, f2 and 4 more"
