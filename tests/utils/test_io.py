"""Atomic writes: readers see the old file or the complete new one, never a partial file or a temp file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from partdiscovery.utils.io import atomic_save_image, atomic_write, atomic_write_json, atomic_write_text


class Boom(RuntimeError):
    pass


def test_atomic_write_creates_parents_and_writes(tmp_path):
    path = tmp_path / "a" / "b" / "file.bin"
    assert atomic_write(path, lambda fh: fh.write(b"hello")) == path
    assert path.read_bytes() == b"hello"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]
    # The permissions a plain open() gives (mkstemp's temporary file is 0600: others could not read the result).
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_failure_keeps_original_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"original")

    def half_then_fail(fh):
        fh.write(b"partial new cont")
        raise Boom("disk full")

    with pytest.raises(Boom):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_failure_on_a_new_file_leaves_nothing(tmp_path):
    path = tmp_path / "new.json"

    def fail(fh):
        fh.write(b"{")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(path, fail)
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_also_cleans_up(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")

    def interrupted(fh):
        fh.write(b"new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_text_json_and_image_helpers(tmp_path):
    atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    atomic_write_json(tmp_path / "j.json", {"a": [1, 2.5], "b": None})
    assert json.loads((tmp_path / "j.json").read_text()) == {"a": [1, 2.5], "b": None}
    arr = (np.arange(12 * 10).reshape(12, 10) % 256).astype(np.uint8)
    atomic_save_image(tmp_path / "im.png", Image.fromarray(arr))
    atomic_save_image(tmp_path / "im.jpg", Image.fromarray(arr).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "im.png")), arr)
    with Image.open(tmp_path / "im.jpg") as im:
        assert im.format == "JPEG" and im.size == (10, 12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["im.jpg", "im.png", "j.json", "t.txt"]


def test_failed_image_save_keeps_the_old_image(tmp_path):
    path = tmp_path / "im.png"
    Image.new("L", (4, 4), 7).save(path)
    with pytest.raises(Exception):  # noqa: B017  (Pillow's error for an unknown format)
        atomic_save_image(tmp_path / "im.notaformat", Image.new("L", (4, 4), 9))
    assert np.asarray(Image.open(path)).max() == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["im.png"]
    # The same file, failing mid-save (the format is known, the mode is not PNG's): a direct save would have
    # truncated the old image; above, the failed save was to another name, which a direct save leaves alone too.
    with pytest.raises(OSError, match="cannot write mode CMYK as PNG"):
        atomic_save_image(path, Image.new("CMYK", (4, 4)))
    assert np.asarray(Image.open(path)).max() == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["im.png"]


def test_remove_stale_temporaries_removes_only_ours(tmp_path):
    from partdiscovery.utils.io import remove_stale_temporaries

    (tmp_path / "checkpoints").mkdir()
    ours = [
        tmp_path / ".config.yaml.ab12cd_9.tmp",
        tmp_path / "checkpoints" / ".step_00000002.pt.x1y2z3w4.tmp",
    ]
    users = [tmp_path / "notes.tmp", tmp_path / ".cache.tmp", tmp_path / "checkpoints" / "draft.tmp"]
    for path in ours + users:
        path.write_bytes(b"x")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(ours)
    assert not any(p.exists() for p in ours) and all(p.exists() for p in users)


def test_atomic_write_temporaries_match_the_stale_pattern(tmp_path, monkeypatch):
    """A write killed midway leaves exactly the kind of file remove_stale_temporaries removes."""
    import os

    from partdiscovery.utils.io import remove_stale_temporaries

    def killed(src, dst):
        raise KeyboardInterrupt

    leftovers = []
    real_unlink = os.unlink
    monkeypatch.setattr(os, "replace", killed)
    monkeypatch.setattr(os, "unlink", lambda p: leftovers.append(p))  # as if killed before cleanup
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(tmp_path / "config.yaml", "x")
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert len(leftovers) == 1
    assert remove_stale_temporaries(tmp_path) == [tmp_path / os.path.basename(leftovers[0])]
