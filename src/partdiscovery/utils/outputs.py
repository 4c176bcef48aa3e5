"""Where partdiscovery may write: the rules that keep a user's files safe.

Every command that writes checks its output paths here *before* any work starts, so a refused path
costs the user nothing and leaves nothing behind:

- A folder we write into (run folder, synthetic dataset, predictions, demo) is marked with a small
  manifest, :data:`MARKER`, naming its kind and, where the names vary, the files we wrote. A folder
  that exists, is not empty and has no marker of the right kind belongs to the user and is refused,
  even with ``--overwrite``. A folder of ours that already holds a result needs ``--overwrite``, and
  then only files listed as ours are replaced or removed. The marker says whether the write finished
  (``complete``): one that stopped half-way (a broken photo, Ctrl-C) holds no result, and the same command
  writes it again without ``--overwrite``.
- A single output file (export, report, metrics JSON) that exists needs ``--overwrite``; where the file
  carries a signature of ours (exports, reports), one that does not is never replaced.
- An output equal to or inside an input folder (the dataset, the images) is refused.
- A path whose parent is a file, or that cannot be created, is refused with the reason.

Why a manifest and not guessing from file names: the probe that motivated this module found a user's
``config.yaml`` overwritten because it looked like ours, and a user's ``00042.jpg`` deleted as a "stale"
synthetic image.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from partdiscovery.errors import OutputPathError, RunLockedError
from partdiscovery.utils.io import atomic_write_json, remove_stale_temporaries

MARKER = ".partdiscovery.json"
"""The manifest file of a folder partdiscovery created: ``{"kind": ..., "files": [...]}``."""

LOCK = ".partdiscovery.lock"
"""The lock file of a folder being written (:func:`lock_folder`); a folder holding only this file counts as
empty."""

OVERWRITE_FLAG = "--overwrite"


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder``: tried, not guessed (``os.access`` says yes to root on
    read-only file systems and ``/proc``). The probe file is anonymous or removed at once."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".partdiscovery-probe-"):
            return True
    except OSError:
        return False


def check_creatable(path: str | os.PathLike, what: str = "output") -> Path:
    """Refuse a path that cannot be created: an ancestor is a file, or the nearest existing folder is
    not writable. Leaves nothing behind."""
    path = Path(path)
    existing = _nearest_existing(path.parent if path.parent != path else path)
    if not existing.is_dir():
        raise OutputPathError(f"{path}: cannot create the {what} here: {existing} is a file, not a folder")
    if not _writable(existing):
        raise OutputPathError(f"{path}: cannot create the {what} here: {existing} is not writable")
    return path


def check_not_inside(path: str | os.PathLike, inputs: Iterable[tuple[str | os.PathLike | None, str]]) -> None:
    """Refuse ``path`` when it is, or lies inside, one of the ``(folder, description)`` inputs."""
    target = Path(path).resolve()
    for folder, description in inputs:
        if folder is None:
            continue
        base = Path(folder).resolve()
        if target == base or base in target.parents:
            raise OutputPathError(
                f"{path}: is inside the {description} {folder}; write outputs outside the input data"
            )


def check_output_folder(
    path: Path, inputs: Iterable[tuple[str | os.PathLike | None, str]], what: str, flag: str = "--out"
) -> bool:
    """Refuse an output folder that is a file, lies inside an input, or (when new) cannot be created; returns
    whether it exists. Writes nothing."""
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path}: exists and is not a folder; give a folder for {flag}")
    check_not_inside(path, inputs)
    if not path.exists():
        check_creatable(path, what)
        return False
    return True


def make_folder(path: Path, what: str = "output folder") -> None:
    """``mkdir -p`` with a one-line error instead of an OSError traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise OutputPathError(f"{path}: cannot create the {what} ({reason})") from None


def lock_folder(
    path: Path, doing: str, what: str = "output folder", flag: str = "--out", wait: bool = False
) -> FileLock:
    """Create ``path`` and take its :data:`LOCK` at once, or raise :class:`RunLockedError`: two processes writing
    one folder would mix their files (and each would remove the other's as stale). ``doing``: what the holder is
    doing, for the message ("training into this run folder"). ``wait``: wait for the lock instead (the processes
    of one ``torchrun`` job, which take turns on purpose). Release with ``.release()`` or use it as a context
    manager."""
    make_folder(path, what)
    if not _writable(path):
        raise OutputPathError(f"{path}: the folder is not writable")
    lock = FileLock(path / LOCK, timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        raise RunLockedError(
            f"{path}: another partdiscovery process is {doing} (its lock {path / LOCK} is held); wait for it to "
            f"finish or choose another {flag}"
        ) from None
    return lock


def first_missing(path: Path) -> Path | None:
    """The topmost folder of ``path`` (``path`` itself, or one of its parents) that does not exist yet: what a call
    that creates ``path`` creates, and may remove again (:func:`remove_if_unwritten`). None when ``path`` exists."""
    path = Path(path).absolute()
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def remove_if_unwritten(path: Path, created: Path | None = None) -> None:
    """Remove the folder ``path`` if nothing was written into it, and the empty parents up to ``created`` (what
    :func:`first_missing` said the call would create). Nothing written is ever removed: only ``path``'s own
    :data:`LOCK` and :data:`MARKER` are unlinked, and folders are removed with ``rmdir``, which refuses one that is
    not empty (a file written meanwhile stays). Call it holding ``path``'s lock, or after the lock's holder is done:
    the lock and marker of a call still at work would go. Errors are ignored: a folder left behind is harmless."""
    path = Path(path).absolute()

    def unwritten(folder: Path) -> bool:  # only empty folders below, and the lock and marker at the top
        return all(
            (entry.is_dir() and not entry.is_symlink() and unwritten(entry))
            or (folder == path and entry.name in (LOCK, MARKER))
            for entry in folder.iterdir()
        )

    def remove_empty(folder: Path) -> None:
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                remove_empty(entry)
        folder.rmdir()  # OSError (no longer empty): stop here, keep the rest

    try:
        if not path.is_dir() or not unwritten(path):
            return
        for name in (MARKER, LOCK):
            (path / name).unlink(missing_ok=True)
        remove_empty(path)
        if created is not None:
            while path != created.absolute() and path.parent != path:
                path = path.parent
                path.rmdir()
    except OSError:
        pass


@contextmanager
def writing_into(
    path: Path, doing: str, what: str = "output folder", flag: str = "--out", wait: bool = False
) -> Iterator[FileLock]:
    """Hold ``path``'s lock (:func:`lock_folder`) for a block that writes into it; a folder created here for a
    block that fails before writing anything (a refused image, Ctrl-C) is removed again. The temporary files a
    killed call left (:func:`~partdiscovery.utils.io.remove_stale_temporaries`) are removed first: under the lock
    no other call of ours is writing them."""
    created = first_missing(path)
    lock = lock_folder(path, doing, what, flag, wait)
    try:
        remove_stale_temporaries(path)
        yield lock
    except BaseException:
        if created is not None:  # under the lock: no other call of ours is writing here
            remove_if_unwritten(path, created)
        raise
    finally:
        lock.release()


def check_output_file(
    path: str | os.PathLike,
    overwrite: bool,
    what: str = "output file",
    ours: Callable[[Path], bool] | None = None,
    inputs: Iterable[tuple[str | os.PathLike | None, str]] = (),
) -> Path:
    """Check that ``path`` may be written as one file; writes nothing.

    Refused: a folder; an existing file without ``overwrite``; with ``overwrite``, an existing file for
    which ``ours(path)`` is False (it was not written by partdiscovery); a path inside ``inputs``; a
    place that cannot be created.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: is a folder; give a file name for the {what}")
    check_not_inside(path, inputs)
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise OutputPathError(f"{path}: exists and is not a regular file; choose another name")
        if ours is not None and not ours(path):  # said first: --overwrite would not help
            raise OutputPathError(
                f"{path}: exists and is not a partdiscovery {what}; refusing to replace it "
                f"even with {OVERWRITE_FLAG}; choose another name"
            )
        if not overwrite:
            raise OutputPathError(
                f"{path}: exists; use {OVERWRITE_FLAG} to replace it, or choose another name"
            )
        if not _writable(path.parent):
            raise OutputPathError(f"{path}: cannot replace it: {path.parent} is not writable")
        return path
    return check_creatable(path, what)


class OutputFolder:
    """A folder of one kind of result, marked as ours by :data:`MARKER`.

    Args:
        path: the folder.
        kind: what it holds, in words (``"run"``, ``"synthetic dataset"``, ``"predictions"``, ``"demo"``);
            a folder marked with another kind is refused.
        legacy: recognises a folder of this kind written before markers existed (then it is ours, with
            no list of files).
        finishes: its writes end with :meth:`finish`, so the marker records whether the last one did
            (``complete``); False for run folders, whose state is their checkpoints and summary.

    Typical use: :meth:`check` (no writes) before any work, :meth:`claim` when writing starts,
    :meth:`refuse_foreign_files` before replacing named files, :meth:`finish` at the end.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        kind: str,
        legacy: Callable[[Path], bool] | None = None,
        finishes: bool = True,
    ) -> None:
        self.path = Path(path)
        self.kind = kind
        self._legacy = legacy
        self._finishes = finishes  # its writes end with finish(): the marker records whether they did

    @property
    def marker(self) -> Path:
        return self.path / MARKER

    def manifest(self) -> dict[str, Any] | None:
        """The marker's contents, or None when the folder has no (readable) marker."""
        try:
            data = json.loads(self.marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def is_ours(self) -> bool:
        manifest = self.manifest()
        if manifest is not None:
            return manifest.get("kind") == self.kind
        return bool(self._legacy and self.path.is_dir() and self._legacy(self.path))

    def owned_files(self) -> set[str]:
        """Paths (relative, POSIX) this tool recorded writing into the folder."""
        files = (self.manifest() or {}).get("files", [])
        return {f for f in files if isinstance(f, str)} if isinstance(files, list) else set()

    def has_recorded_files(self) -> bool:
        """Whether a file recorded as ours exists (a folder of ours from before manifests: whether it
        holds anything). A folder claimed by a write that failed before writing anything has none, and
        is reused without ``--overwrite``."""
        if self.manifest() is None:
            return not self.is_empty()
        return any((self.path / rel).exists() for rel in self.owned_files())

    def holds_result(self) -> bool:
        """Whether the folder holds a finished write's result, which only ``--overwrite`` may replace: a write that
        failed or was killed between :meth:`claim` and :meth:`finish` left a partial one, which the next call
        replaces without asking (markers written before that was recorded: :meth:`has_recorded_files`)."""
        complete = (self.manifest() or {}).get("complete")
        if complete is False:
            return False
        return self.has_recorded_files()

    def is_empty(self) -> bool:
        try:
            return all(p.name == LOCK for p in self.path.iterdir())
        except FileNotFoundError:
            return True
        except OSError as e:
            raise OutputPathError(
                f"{self.path}: cannot read the folder ({os.strerror(e.errno or errno.EIO)})"
            ) from None

    def check(
        self,
        overwrite: bool = False,
        inputs: Iterable[tuple[str | os.PathLike | None, str]] = (),
        has_result: Callable[[Path], bool] | None = None,
        flag: str = "--out",
    ) -> str:
        """Check the folder may be written; writes nothing. Returns ``"new"``, ``"empty"`` or ``"ours"``.

        ``has_result(path)``: whether a folder of ours holds a result that only ``overwrite`` may replace
        (default: :meth:`has_recorded_files`).
        """
        path = self.path
        if not check_output_folder(path, inputs, self.kind + " folder", flag):
            return "new"
        if not _writable(path):
            raise OutputPathError(f"{path}: the folder is not writable")
        if self.is_empty():
            return "empty"
        if not self.is_ours():
            other = (self.manifest() or {}).get("kind")
            if other:
                raise OutputPathError(
                    f"{path}: holds a partdiscovery {other}, not a {self.kind}; choose another {flag}"
                )
            raise OutputPathError(
                f"{path}: is not empty and was not written by partdiscovery (no {MARKER}); "
                f"refusing to write into it; choose a new or empty folder for {flag}"
            )
        finished = has_result(path) if has_result is not None else self.holds_result()
        if finished and not overwrite:
            raise OutputPathError(
                f"{path}: holds a previous {self.kind}; use {OVERWRITE_FLAG} to replace it "
                f"or choose another {flag}"
            )
        return "ours"

    def refuse_foreign_files(self, relpaths: Iterable[str]) -> None:
        """Refuse when a file about to be written exists and is not recorded as ours (a user's file)."""
        if self.manifest() is None and self.is_ours():
            return  # a folder of ours from before manifests: every file of ours is unrecorded
        owned = self.owned_files()
        foreign = [r for r in relpaths if r not in owned and (self.path / r).exists()]
        if foreign:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise OutputPathError(
                f"{self.path / foreign[0]}{more}: exists and was not written by partdiscovery; "
                "refusing to replace it; move it away or choose another folder"
            )

    def claim(self, files: Iterable[str] = (), **extra: Any) -> None:
        """Create the folder and write the marker, recording ``files`` (plus those already recorded) as
        ours *before* they are written, so an interrupted write is still recognised as ours."""
        make_folder(self.path, self.kind + " folder")
        recorded = sorted(self.owned_files() | set(files))
        self._write_marker(recorded, {**extra, "complete": False} if self._finishes else extra)

    def finish(self, files: Iterable[str], remove_stale: bool = True, **extra: Any) -> list[Path]:
        """Record exactly ``files`` as ours; with ``remove_stale``, delete files recorded by an earlier
        write that this one did not produce (ours, so safe to remove). Returns the removed paths."""
        files = set(files)
        removed = []
        if remove_stale:
            for rel in sorted(self.owned_files() - files):
                target = self.path / rel
                if target.is_file() and not target.is_symlink():
                    target.unlink()
                    removed.append(target)
        self._write_marker(sorted(files), {**extra, "complete": True})
        return removed

    def _write_marker(self, files: list[str], extra: dict[str, Any]) -> None:
        from partdiscovery import __version__

        atomic_write_json(self.marker, {"kind": self.kind, "version": __version__, **extra, "files": files})


__all__ = [
    "LOCK",
    "MARKER",
    "OutputFolder",
    "check_creatable",
    "check_not_inside",
    "check_output_folder",
    "check_output_file",
    "first_missing",
    "lock_folder",
    "make_folder",
    "remove_if_unwritten",
    "writing_into",
]
