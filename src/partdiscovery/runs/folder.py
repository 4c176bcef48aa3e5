"""A training run's folder: the names of its files and the rules for writing them.

A run folder holds::

    config.yaml            the resolved config (rebuilds the model)
    run_info.json          git SHA, versions, argv, dataset, device, ...
    metrics.csv            one row per logged step
    train_summary.json     written last: the run has finished
    checkpoints/step_<N>.pt
    tensorboard/           with ``train.tensorboard=true``

and what other commands write into it about the run: ``report.html`` (``partdiscovery report``) and
metrics JSON files (``evaluate --json``). ``train --overwrite`` removes those with the checkpoints:
they describe the run it replaces.
"""

from __future__ import annotations

import csv
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from partdiscovery.errors import OutputPathError
from partdiscovery.runs.checkpoint import CHECKPOINT_DIR, list_checkpoints
from partdiscovery.utils.io import atomic_write_text, remove_stale_temporaries
from partdiscovery.utils.outputs import LOCK, OutputFolder, lock_folder

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "train_summary.json"
RUN_INFO_FILE = "run_info.json"
REQUEST_FILE = "train_request.json"
"""What ``train`` was asked for (the config before restarts and rounds derive their runs' own, the split and the
images), so that a ``--resume`` that skips finished runs is still compared with the request."""
TENSORBOARD_DIR = "tensorboard"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, RUN_INFO_FILE)
"""The files at the top of a run folder (besides ``checkpoints/``)."""
RUN_KIND = "run"
LOCK_FILE = LOCK
REPORT_FILE = "report.html"
"""The run's HTML report (:mod:`partdiscovery.viz.report`)."""
REPORT_GENERATOR = "partdiscovery report"
"""Content of a report's ``<meta name="generator">``: how a report of ours is told from a user's file."""
METRICS_JSON_KEYS = frozenset({"split", "data", "source"})
"""Keys every metrics JSON of ``evaluate --json`` carries (every protocol's result has them)."""


def is_report(path: str | Path) -> bool:
    """Whether ``path`` is an HTML report of ours (:data:`REPORT_GENERATOR` in its first 4096 characters):
    then it may be replaced."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return f'<meta name="generator" content="{REPORT_GENERATOR}' in head


def _metrics(path: str | Path) -> dict | None:
    """The contents of a metrics JSON of ``evaluate --json`` (:data:`METRICS_JSON_KEYS`), else None."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and METRICS_JSON_KEYS <= set(data) else None


def is_metrics_json(path: str | Path) -> bool:
    """A metrics JSON written by ``evaluate --json`` (:data:`METRICS_JSON_KEYS`): the only kind of file
    ``evaluate --json --overwrite`` may replace, and ``train --overwrite`` removes from its run folder."""
    return _metrics(path) is not None


def _legacy_run(path: Path) -> bool:
    """A run folder written before run folders were marked: checkpoints of ours and our run_info.json."""
    info = path / RUN_INFO_FILE
    if not list_checkpoints(path) or not info.is_file():
        return False
    try:
        data = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"git_sha", "version", "torch", "argv"} <= set(data)


@dataclass
class RunFolder:
    """The files of one training run, and the rules for writing them.

    A run folder is marked as ours (:data:`~partdiscovery.utils.outputs.MARKER`); a non-empty folder
    without the mark belongs to the user and is never written into. Writing happens under an exclusive
    lock (``.partdiscovery.lock``, the maintained ``filelock`` library) held for the whole training,
    so two processes never mix their files in one folder.
    """

    path: Path

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def run_info(self) -> Path:
        return self.path / RUN_INFO_FILE

    def read_run_info(self) -> dict:
        """``run_info.json`` as a dict; ``{}`` when it is missing or unreadable (an exported file alone, a run
        killed before writing it)."""
        try:
            info = json.loads(self.run_info.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def output(self) -> OutputFolder:
        # A run's state is its checkpoints and summary (resume, overwrite), not the marker's "complete".
        return OutputFolder(self.path, RUN_KIND, legacy=_legacy_run, finishes=False)

    def is_ours(self) -> bool:
        """A run folder of ours: marked, from before markers, or holding checkpoints of ours."""
        return self.output.is_ours() or bool(list_checkpoints(self.path))

    def check(self, resume: bool, overwrite: bool, inputs=()) -> None:
        """Every refusal that needs no lock, before any work and without writing anything: the path is
        a file, a user's folder, inside the data, not creatable; or a run that needs ``--overwrite`` or
        ``--resume``."""
        if resume and overwrite:
            raise OutputPathError("give --resume (continue the run) or --overwrite (start again), not both")
        self.output.check(overwrite, inputs=inputs, has_result=lambda _: False)
        self._check_state(resume, overwrite)

    def _check_state(self, resume: bool, overwrite: bool) -> None:
        if overwrite or resume:
            return
        if self.summary.exists():
            raise OutputPathError(
                f"{self.path}: holds a finished run; use --overwrite to replace it or choose another --out"
            )
        if list_checkpoints(self.path):
            raise OutputPathError(
                f"{self.path}: holds an unfinished run; use --resume to continue it "
                "or --overwrite to start again"
            )

    def lock(self) -> FileLock:
        """Create the folder and take its lock (at once, or :class:`RunLockedError`); release it with
        ``.release()`` or use it as a context manager."""
        return lock_folder(self.path, "training into this run folder", "run folder")

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """Under the lock: check again (the folder may have changed since :meth:`check`), mark the
        folder as ours, remove temporaries of an interrupted write, and with ``overwrite`` (and not
        ``resume``) remove the previous run's checkpoints, log and summary, and the report and metrics JSON
        files that describe it (said in a warning): files of ours only."""
        self.check(resume, overwrite)
        self.output.claim()
        stale = remove_stale_temporaries(self.path)
        if stale:
            warnings.warn(
                f"{self.path}: removed {len(stale)} temporary file(s) left by an interrupted write "
                f"(e.g. {stale[0].relative_to(self.path)})",
                stacklevel=2,
            )
        if overwrite and not resume:
            for p in list_checkpoints(self.path):
                p.unlink()
            for p in (self.summary, self.metrics):
                p.unlink(missing_ok=True)
            described = self.derived_files()
            for p in described:
                p.unlink()
            if described:
                warnings.warn(
                    f"{self.path}: removed {', '.join(p.name for p in described)}, which described the run "
                    "this one replaces",
                    stacklevel=2,
                )

    def derived_files(self) -> list[Path]:
        """What other commands wrote into the folder about its run: our ``report.html`` and the metrics JSON files
        of ``evaluate --json`` at its top whose ``source`` is this run (a metrics file of another model kept here,
        e.g. a baseline's, and a user's files are left alone)."""
        found = [self.path / REPORT_FILE] if is_report(self.path / REPORT_FILE) else []
        for path in sorted(self.path.glob("*.json")):
            metrics = _metrics(path) if path.name not in RUN_FILES else None
            if metrics is not None and self._holds(metrics["source"]):
                found.append(path)
        return found

    def _holds(self, source) -> bool:
        """Whether ``source`` (a metrics JSON's ``--run``) is this folder or a file inside it."""
        try:
            source = Path(source).resolve()
        except (TypeError, ValueError, OSError):
            return False
        here = self.path.resolve()
        return source == here or here in source.parents

    def trim_metrics(self, last_step: int) -> None:
        """On resume, drop log rows past the checkpoint so that ``metrics.csv`` has each step once."""
        if not self.metrics.exists():
            return
        with open(self.metrics, newline="") as fh:
            rows = list(csv.reader(fh))
        kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= last_step]
        atomic_write_text(self.metrics, "".join(",".join(r) + "\n" for r in kept))
