"""Progress output: every item passes through unchanged; off a terminal, plain log lines instead of a bar."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from partdiscovery.utils import progress as progress_module
from partdiscovery.utils.progress import progress


class FakeStderr(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def stderr(capsys):
    """What ``progress`` wrote to stderr, read through pytest's capture (not a terminal)."""
    return lambda: capsys.readouterr().err


def test_disabled_yields_every_item_and_prints_nothing(stderr):
    assert list(progress(iter(range(5)), "work", enabled=False)) == [0, 1, 2, 3, 4]
    assert stderr() == ""


def test_off_a_terminal_one_line_at_the_end_with_the_count(stderr):
    assert list(progress(["a", "b", "c"], "images", unit="img")) == ["a", "b", "c"]
    lines = stderr().splitlines()
    assert len(lines) == 1  # every_s (30 s) never passed: no periodic line, no bar
    assert lines[0].startswith("images: done, 3 img in ")


def test_off_a_terminal_periodic_lines_count_up_to_the_total(stderr):
    list(progress(range(3), "fit", every_s=0.0))
    lines = stderr().splitlines()
    assert [line.split(" (")[0] for line in lines[:3]] == ["fit: 1/3 it", "fit: 2/3 it", "fit: 3/3 it"]
    assert lines[3].startswith("fit: done, 3 it in ")


def test_a_generator_without_a_length_is_counted_without_a_total(stderr):
    list(progress((i for i in range(2)), "read", every_s=0.0))
    assert [line.split(" (")[0] for line in stderr().splitlines()[:2]] == ["read: 1 it", "read: 2 it"]


def test_on_a_terminal_a_bar_and_no_log_lines(monkeypatch):
    fake = FakeStderr()
    monkeypatch.setattr(progress_module.sys, "stderr", fake)  # set in the test body, after pytest's capture
    bars = []

    def fake_tqdm(iterable, **kwargs):
        bars.append(kwargs)
        return iter(iterable)

    monkeypatch.setattr(progress_module, "tqdm", fake_tqdm)
    assert list(progress([1, 2], "train", total=2, unit="step")) == [1, 2]
    assert bars == [{"desc": "train", "total": 2, "unit": "step", "dynamic_ncols": True}]
    assert "done" not in fake.getvalue()


def test_off_a_terminal_a_line_at_most_every_every_s(stderr, monkeypatch):
    """A clock read at the start, after each item and at the end: items at 10, 20, 30 and 40 s with every_s=25 give
    one line (at 30 s; 40 s is 10 s after it), not one per item once 25 s have passed."""
    clock = iter([0.0, 10.0, 20.0, 30.0, 40.0, 45.0])
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(perf_counter=lambda: next(clock)))  # its own
    list(progress(range(4), "fit", every_s=25.0))
    assert stderr().splitlines() == ["fit: 3/4 it (30 s)", "fit: done, 4 it in 45.0 s"]


def test_off_a_terminal_a_given_total_counts_a_generator(stderr):
    list(progress((i for i in range(2)), "read", total=2, every_s=0.0))
    assert [line.split(" (")[0] for line in stderr().splitlines()[:2]] == ["read: 1/2 it", "read: 2/2 it"]
