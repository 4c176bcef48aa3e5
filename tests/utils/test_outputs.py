"""Output paths: a user's files are never replaced, ours only with overwrite, nothing is written to check."""

from __future__ import annotations

import json

import pytest

from partdiscovery.errors import OutputPathError
from partdiscovery.utils.outputs import (
    LOCK,
    MARKER,
    OutputFolder,
    check_creatable,
    check_not_inside,
    check_output_file,
)


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_new_and_empty_folders_are_accepted_without_writing(tmp_path):
    assert OutputFolder(tmp_path / "new" / "deeper", "predictions").check() == "new"
    (tmp_path / "empty").mkdir()
    assert OutputFolder(tmp_path / "empty", "predictions").check() == "empty"
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / LOCK).write_text("")
    assert OutputFolder(tmp_path / "locked", "predictions").check() == "empty"  # only our lock file
    assert listing(tmp_path) == ["empty", "locked", f"locked/{LOCK}"]


def test_a_users_folder_is_refused_even_with_overwrite(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.yaml").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(OutputPathError, match="not written by partdiscovery"):
            OutputFolder(tmp_path / "mine", "run").check(overwrite)
    (tmp_path / "mine" / MARKER).write_text("not json")
    with pytest.raises(OutputPathError, match="not written by partdiscovery"):
        OutputFolder(tmp_path / "mine", "run").check(True)


def test_a_folder_of_another_kind_is_refused(tmp_path):
    folder = OutputFolder(tmp_path / "set", "synthetic dataset")
    folder.claim(["a.txt"])
    with pytest.raises(OutputPathError, match="holds a partdiscovery synthetic dataset, not a run"):
        OutputFolder(tmp_path / "set", "run").check(True)


def test_a_folder_of_ours_needs_overwrite(tmp_path):
    folder = OutputFolder(tmp_path / "p", "predictions")
    folder.claim(["a.png"])
    (tmp_path / "p" / "a.png").write_text("ours")
    folder.finish(["a.png"])
    with pytest.raises(OutputPathError, match="--overwrite"):
        folder.check(False)
    assert folder.check(True) == "ours"
    assert folder.check(False, has_result=lambda path: False) == "ours"  # e.g. an unfinished demo


def test_files_and_outputs_that_are_not_folders(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="not a folder"):
        OutputFolder(tmp_path / "f", "run").check(True)
    with pytest.raises(OutputPathError, match="is a file"):
        OutputFolder(tmp_path / "f" / "sub", "run").check(True)


def test_overwrite_replaces_only_recorded_files_and_removes_only_recorded_stale_ones(tmp_path):
    folder = OutputFolder(tmp_path / "p", "predictions")
    folder.claim(["1.png", "2.png"])
    for name in ("1.png", "2.png", "3.png"):  # 3.png is the user's
        (tmp_path / "p" / name).write_text(name)
    folder.finish(["1.png", "2.png"])
    folder.refuse_foreign_files(["1.png", "2.png"])  # ours: fine
    with pytest.raises(OutputPathError, match="3.png"):
        folder.refuse_foreign_files(["1.png", "3.png"])
    removed = folder.finish(["1.png"])  # a smaller second write: 2.png is stale and ours
    assert removed == [tmp_path / "p" / "2.png"]
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [MARKER, "1.png", "3.png"]
    manifest = json.loads((tmp_path / "p" / MARKER).read_text())
    assert manifest["kind"] == "predictions" and manifest["files"] == ["1.png"]


def test_legacy_folders_are_recognised(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "sign").write_text("ours")
    folder = OutputFolder(tmp_path / "old", "run", legacy=lambda p: (p / "sign").is_file())
    assert folder.is_ours() and folder.check(True) == "ours"
    folder.refuse_foreign_files(["sign"])  # no manifest: every file of a legacy folder is ours
    with pytest.raises(OutputPathError, match="holds a previous run"):  # and what it holds is a result
        folder.check(False)


def test_output_file_rules(tmp_path):
    out = tmp_path / "m.json"
    assert check_output_file(out, False) == out
    out.write_text("{}")
    with pytest.raises(OutputPathError, match="--overwrite"):
        check_output_file(out, False)
    assert check_output_file(out, True) == out
    with pytest.raises(OutputPathError, match="not a partdiscovery metrics JSON"):
        check_output_file(out, True, what="metrics JSON", ours=lambda p: False)
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_file(tmp_path, True)
    with pytest.raises(OutputPathError, match="is a file"):
        check_output_file(out / "x.json", True)
    assert listing(tmp_path) == ["m.json"]


def test_outputs_inside_the_inputs_are_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for inside in (data, data / "runs" / "r"):
        with pytest.raises(OutputPathError, match="inside the dataset folder"):
            check_not_inside(inside, [(data, "dataset folder")])
    check_not_inside(tmp_path / "datasets", [(data, "dataset folder"), (None, "unused")])
    with pytest.raises(OutputPathError, match="inside the dataset folder"):
        check_output_file(data / "m.json", True, inputs=[(data, "dataset folder")])


def test_uncreatable_places(tmp_path):
    import pathlib

    if pathlib.Path("/proc/self").is_dir():
        with pytest.raises(OutputPathError, match="not writable"):
            check_creatable("/proc/partdiscovery/out")
    assert check_creatable(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert listing(tmp_path) == []


def test_a_claimed_folder_with_nothing_written_yet_is_reused_without_overwrite(tmp_path):
    """A write that failed before its first file (e.g. training refused) costs no --overwrite later."""
    folder = OutputFolder(tmp_path / "p", "predictions")
    folder.claim(["1.png"])
    assert folder.check(False) == "ours"
    (tmp_path / "p" / "1.png").write_text("ours")
    folder.finish(["1.png"])
    with pytest.raises(OutputPathError, match="--overwrite"):
        folder.check(False)


def test_a_write_that_failed_half_way_is_replaced_without_overwrite(tmp_path):
    """predict stopped by a broken photo after writing some labels: fixing the photo and running the same command
    again must work (the folder holds no finished result), and replaces only files of ours."""
    folder = OutputFolder(tmp_path / "p", "predictions")
    folder.claim(["1.png", "2.png"])
    (tmp_path / "p" / "1.png").write_text("ours")
    assert not folder.holds_result() and folder.check(False) == "ours"
    folder.claim(["1.png", "2.png"])
    folder.finish(["1.png"])
    assert folder.holds_result()


def test_only_folders_whose_writes_finish_record_complete(tmp_path):
    runs = OutputFolder(tmp_path / "run", "run", finishes=False)
    runs.claim()
    assert "complete" not in runs.manifest()
    predictions = OutputFolder(tmp_path / "p", "predictions")
    predictions.claim(["1.png"])
    assert predictions.manifest()["complete"] is False
    predictions.finish(["1.png"])
    assert predictions.manifest()["complete"] is True


def test_a_users_file_is_refused_first_for_what_overwrite_cannot_change(tmp_path):
    """Without --overwrite the message must not suggest it when --overwrite would be refused too."""
    theirs = tmp_path / "mine.onnx"
    theirs.write_bytes(b"someone's model")
    for overwrite in (False, True):
        with pytest.raises(
            OutputPathError, match="is not a partdiscovery model; refusing to replace it even with"
        ):
            check_output_file(theirs, overwrite, what="model", ours=lambda path: False)


def test_lock_folder_refuses_a_held_lock_at_once_or_waits_for_it(tmp_path):
    """``wait``: the processes of one torchrun job take turns on a mask folder on purpose."""
    import threading
    import time

    from filelock import FileLock

    from partdiscovery.errors import RunLockedError
    from partdiscovery.utils.outputs import LOCK, lock_folder

    held, done = threading.Event(), threading.Event()

    def other_process():  # holds the lock for 0.3 s
        with FileLock(tmp_path / LOCK, timeout=0):
            held.set()
            time.sleep(0.3)
        done.set()

    holder = threading.Thread(target=other_process)
    holder.start()
    held.wait()
    with pytest.raises(RunLockedError, match="another partdiscovery process is writing"):
        lock_folder(tmp_path, "writing")
    with lock_folder(tmp_path, "writing", wait=True):
        assert done.is_set()
    holder.join()


def test_writing_into_removes_a_folder_it_created_for_a_block_that_failed(tmp_path):
    from partdiscovery.utils.outputs import writing_into

    with pytest.raises(KeyboardInterrupt), writing_into(tmp_path / "new", "writing"):
        raise KeyboardInterrupt  # Ctrl-C before anything was written
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError), writing_into(tmp_path / "a" / "b" / "out", "writing"):
        raise ValueError
    assert not (tmp_path / "a").exists()  # the parents made for it go too
    (tmp_path / "old").mkdir()
    with pytest.raises(ValueError), writing_into(tmp_path / "old", "writing"):
        raise ValueError
    assert (tmp_path / "old").is_dir()  # not created here: left as it was
    with writing_into(tmp_path / "done", "writing"):
        (tmp_path / "done" / "result.txt").write_text("ok")
    assert (tmp_path / "done" / "result.txt").is_file()


def test_remove_if_unwritten_keeps_a_folder_with_any_file(tmp_path):
    from partdiscovery.utils.outputs import LOCK, MARKER, remove_if_unwritten

    claimed = tmp_path / "claimed"
    (claimed / "masks" / "empty").mkdir(parents=True)
    (claimed / MARKER).write_text("{}")
    (claimed / LOCK).write_text("")
    remove_if_unwritten(claimed)  # a marker, a lock and empty folders: nothing was written
    assert not claimed.exists()
    result = tmp_path / "result"  # a file of the folder's own, beside its marker and lock
    result.mkdir()
    for name in (MARKER, LOCK, "metrics.json"):
        (result / name).write_text("{}")
    remove_if_unwritten(result)
    assert (result / "metrics.json").is_file()
    written = tmp_path / "written"
    (written / "masks").mkdir(parents=True)
    (written / MARKER).write_text("{}")
    (written / "masks" / MARKER).write_text("{}")  # a nested folder's marker is a file written
    remove_if_unwritten(written)
    assert (written / "masks" / MARKER).is_file()


def test_writing_into_removes_what_a_killed_call_left_and_nothing_of_the_users(tmp_path):
    from partdiscovery.utils.outputs import writing_into

    out = tmp_path / "out" / "overlays"
    out.mkdir(parents=True)
    left = out / ".007.png.muujk6vo.tmp"  # an atomic write's temporary, its process killed mid-write
    left.write_bytes(b"half")
    mine = out / "notes.tmp"
    mine.write_text("the user's")
    with writing_into(tmp_path / "out", "writing"):
        assert not left.exists() and mine.is_file()


def test_a_second_claim_keeps_what_the_first_recorded(tmp_path):
    """A write that claims fewer files than an earlier, interrupted one: the earlier files are still ours (not
    refused as the user's) and are removed as stale when the write finishes."""
    folder = OutputFolder(tmp_path / "p", "predictions")
    folder.claim(["1.png", "2.png"])
    for name in ("1.png", "2.png"):
        (tmp_path / "p" / name).write_text("ours")
    folder.claim(["1.png"])
    assert folder.owned_files() == {"1.png", "2.png"}
    folder.refuse_foreign_files(["2.png"])
    assert folder.finish(["1.png"]) == [tmp_path / "p" / "2.png"]


def test_finish_removes_stale_files_only_when_asked_and_never_through_a_link(tmp_path):
    """``remove_stale=False`` (the demo, which keeps earlier results); a recorded name that is now a link is left."""
    folder = OutputFolder(tmp_path / "p", "predictions")
    folder.claim(["1.png", "2.png", "3.png"])
    for name in ("1.png", "2.png", "mine.png"):
        (tmp_path / "p" / name).write_text(name)
    (tmp_path / "p" / "3.png").symlink_to(tmp_path / "p" / "mine.png")
    folder.finish(["1.png", "2.png", "3.png"])
    assert folder.finish(["1.png"], remove_stale=False) == []
    assert (tmp_path / "p" / "2.png").is_file() and folder.owned_files() == {"1.png"}
    folder.finish(["1.png", "2.png", "3.png"])
    assert folder.finish(["1.png"]) == [tmp_path / "p" / "2.png"]
    assert (tmp_path / "p" / "3.png").is_symlink()


def test_refusing_several_foreign_files_names_the_first_and_counts_the_others(tmp_path):
    folder = OutputFolder(tmp_path / "p", "predictions")
    folder.claim([])
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / "p" / name).write_text("the user's")
    with pytest.raises(OutputPathError, match=r"a\.png \(and 2 more\): exists and was not written"):
        folder.refuse_foreign_files(["a.png", "b.png", "c.png"])


def test_first_missing_is_the_topmost_folder_a_call_would_create(tmp_path):
    from partdiscovery.utils.outputs import first_missing

    assert first_missing(tmp_path) is None
    assert first_missing(tmp_path / "a" / "b" / "c") == (tmp_path / "a").absolute()
