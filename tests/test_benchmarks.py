"""The benchmark scripts' helpers (the benchmarks themselves are run by hand, never timed in tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_replace_section_keeps_the_prose_around_the_table(quality, tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"# B\nbefore\n{quality.BEGIN}\nold table\n{quality.END}\nafter\n")
    quality.replace_section(doc, "| new |")
    assert doc.read_text() == f"# B\nbefore\n{quality.BEGIN}\n| new |\n{quality.END}\nafter\n"


def test_replace_section_refuses_a_file_without_markers(quality, tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("no markers\n")
    with pytest.raises(SystemExit, match="BENCHMARKS.md: needs the markers"):
        quality.replace_section(doc, "| new |")
    assert doc.read_text() == "no markers\n"


def test_dataset_paths_accepts_any_part_folder(quality, tiny_dataset, tmp_path):
    paths = quality.dataset_paths([str(tiny_dataset), "no_such_dataset_here"], tmp_path, quick=True)
    assert paths == {Path(tiny_dataset).name: Path(tiny_dataset)}


def test_subset_folder_links_a_seeded_subset(quality, tiny_dataset, tmp_path):
    train = (Path(tiny_dataset) / "train.txt").read_text().split()
    test = (Path(tiny_dataset) / "test.txt").read_text().split()
    subset = quality.subset_folder(Path(tiny_dataset), tmp_path / "sub", len(train) - 1, len(test))
    kept = (subset / "train.txt").read_text().split()
    assert len(kept) == len(train) - 1 and set(kept) <= set(train) and kept == sorted(kept, key=train.index)
    assert (subset / "test.txt").read_text().split() == test
    assert (subset / "images").resolve() == (Path(tiny_dataset) / "images").resolve()
    assert quality.subset_folder(Path(tiny_dataset), tmp_path / "same", 10**6, 10**6) == Path(tiny_dataset)
