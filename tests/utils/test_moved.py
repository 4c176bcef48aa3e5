"""Moved names: the old import path still gives the same object, with a warning that names the new place."""

from __future__ import annotations

import importlib

import pytest

from partdiscovery.utils.moved import moved_names

MOVED = [
    ("partdiscovery.viz.report", "REPORT_FILE", "partdiscovery.runs", "REPORT_FILE"),
    ("partdiscovery.viz.report", "is_report", "partdiscovery.runs", "is_report"),
    ("partdiscovery.workflows.evaluate", "is_metrics_json", "partdiscovery.runs", "is_metrics_json"),
    ("partdiscovery.training.optim", "check_names", "partdiscovery.training.checks", "check_config"),
    ("partdiscovery.foreground.folder", "list_images", "partdiscovery.data.part_folder", "list_images"),
]


@pytest.mark.parametrize(("old", "name", "new", "new_name"), MOVED)
def test_an_old_name_is_the_new_object_with_a_warning(old, name, new, new_name):
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new}\.{new_name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), new_name)


def test_an_unknown_name_is_still_an_attribute_error():
    getattr_ = moved_names("pkg.old", {"a": "partdiscovery.runs"})
    with pytest.raises(AttributeError, match="module 'pkg.old' has no attribute 'b'"):
        getattr_("b")


def test_hasattr_and_from_import_of_a_missing_name_keep_working():
    module = importlib.import_module("partdiscovery.viz.report")
    assert not hasattr(module, "no_such_name")
    with pytest.raises(ImportError):
        exec("from partdiscovery.viz.report import no_such_name", {})
