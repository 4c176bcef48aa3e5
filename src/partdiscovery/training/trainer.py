"""One readable training loop, generic over methods (:class:`~partdiscovery.training.methods.Method`).

Read :meth:`Trainer.fit` top to bottom: take the run folder -> put the method on its device -> build
optimiser and schedule -> maybe resume -> for each phase (one; with self-training, one more per round:
:mod:`~partdiscovery.training.phases`), for each step: batch, :func:`train_step` (skipping non-finite steps), log,
checkpoint -> summary.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
import resource
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from partdiscovery import __version__
from partdiscovery.config import Config, config_differences
from partdiscovery.data.base import PartDataset
from partdiscovery.data.transforms import StepBatchSampler, TrainingSet
from partdiscovery.errors import CheckpointError, PartDiscoveryError, some_of
from partdiscovery.runs.checkpoint import (
    checkpoint_config,
    checkpoint_path,
    git_sha,
    list_checkpoints,
    load_latest,
    prune_checkpoints,
    save_checkpoint,
)
from partdiscovery.runs.folder import RunFolder
from partdiscovery.training.checks import check_config
from partdiscovery.training.methods.base import Method
from partdiscovery.training.optim import build_optimizer, build_schedule
from partdiscovery.training.phases import phase_segments, phase_starts
from partdiscovery.training.step import step_generator, train_step
from partdiscovery.utils.distributed import DistInfo, barrier, mean_across, process_device, setup
from partdiscovery.utils.io import atomic_write_json, atomic_write_text


class TrainingDivergedError(PartDiscoveryError):
    """Too many consecutive steps with a non-finite loss."""


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors on ``device`` (other entries as they are)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class TrainingLog:
    """Where a run's losses go: ``metrics.csv`` and TensorBoard (main process only, every
    ``train.log_every`` steps and the last), a progress bar on a terminal, else log lines on stderr.

    Args:
        run: the run folder; cfg: the run's config; start_step: steps already done (resume).
        main: whether this is the process that writes files; progress: show the bar or log lines.
    """

    def __init__(self, run: RunFolder, cfg: Config, start_step: int, main: bool, progress: bool) -> None:
        self.cfg, self.main, self.progress = cfg, main, progress
        self.interactive = main and progress and sys.stderr.isatty()
        self.bar = tqdm(
            total=cfg.train.steps,
            initial=start_step,
            disable=not self.interactive,
            desc="train",
            dynamic_ncols=True,
        )
        self.file = open(run.metrics, "a", newline="") if main else None
        self.board = _tensorboard(run) if main and cfg.train.tensorboard else None
        self.writer: csv.DictWriter | None = None

    def step(self, done: int, lr: float, losses: dict[str, float], elapsed_s: float) -> None:
        """Record step ``done`` (1-based): ``losses`` averaged over processes, the ``lr`` of the last parameter group
        that the step trained at."""
        train = self.cfg.train
        if self.main and (done % train.log_every == 0 or done == train.steps):
            row = {"step": done, "lr": lr, **losses, "elapsed_s": round(elapsed_s, 3)}
            self._write_row(row)
            if not self.interactive and self.progress:
                line = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
                print(f"step {done}/{train.steps} {line}", file=sys.stderr, flush=True)
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        self.bar.update(1)

    def _write_row(self, row: dict) -> None:
        if self.writer is None:  # the header once, also when a resumed run appends to its CSV
            fields = list(row)
            # A resumed run: its columns are those of the file's header, in its order.
            if self.file.tell() > 0:
                with open(self.file.name, newline="") as existing:
                    header = next(csv.reader(existing), None)
                if header and set(header) == set(fields):
                    fields = header
            self.writer = csv.DictWriter(self.file, fieldnames=fields)
            if self.file.tell() == 0:
                self.writer.writeheader()
        self.writer.writerow(row)
        if self.board is not None:
            for name, value in row.items():
                if name != "step":
                    self.board.add_scalar(f"train/{name}", value, row["step"])
        self.file.flush()

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.bar.close()
        if self.file is not None:
            self.file.close()
        if self.board is not None:
            self.board.close()


def _tensorboard(run: RunFolder):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise PartDiscoveryError(
            "train.tensorboard=true needs the tensorboard package: pip install tensorboard"
        ) from None
    return SummaryWriter(str(run.tensorboard))


RESUME_MAY_CHANGE = frozenset(
    {
        "data.cache_size",
        "data.num_workers",
        "model.backbone_weights",
        "model.feature_weights",
        "train.checkpoint_every",
        "train.compile",
        "train.keep_checkpoints",
        "train.log_every",
        "train.max_bad_steps",
        "train.tensorboard",
        "train.threads",
    }
)
"""Config keys that a resume may change: how the run is executed, logged and kept, not what it computes; where
weight files are (a run moved to another machine); and the sections :data:`RESUME_MAY_CHANGE_SECTIONS`. Every
other difference from the run's config is refused: the data order, augmentations and schedule of the rest of the
run would not be the stored run's."""
RESUME_MAY_CHANGE_SECTIONS = ("predict", "foreground")
"""``predict``: read by inference only (but by self-training's targets too: a run with ``train.self_train_steps``
keeps it, and ``data.cache_size``). ``foreground``: the masks made at the start are reused by a resume."""


def check_resume_config(stored: Config, cfg: Config, where: str | Path) -> None:
    """Raise :class:`CheckpointError` (naming ``where`` and up to four keys) when ``cfg`` differs from the
    ``stored`` config of the run being resumed outside :data:`RESUME_MAY_CHANGE` and
    :data:`RESUME_MAY_CHANGE_SECTIONS`. A default changed by a later version is a difference too: the message
    names the key, and the run's own value given back resumes it."""
    # Self-training's targets are the parts as ``predict`` refines them, on the in-memory images: there the predict
    # section and the image cache's size are what the run computes.
    fixed = {"data.cache_size"} if stored.train.self_train_steps else set()

    def may_change(key: str) -> bool:
        if key in fixed or (key.startswith("predict.") and stored.train.self_train_steps):
            return False
        return key in RESUME_MAY_CHANGE or key.split(".")[0] in RESUME_MAY_CHANGE_SECTIONS

    changed = [
        f"{key} {old!r} -> {new!r}"
        for key, old, new in config_differences(stored, cfg)
        if not may_change(key)
    ]
    if changed:
        listed = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise CheckpointError(
            f"{where}: was trained with different settings ({listed}); resume with the same settings, or start "
            "a new run (another --out, or --overwrite)"
        )


def training_images(dataset) -> dict:
    """What a run records of its training images: ``split``, the number of ``images``, ``ids_sha256``, a digest of
    the sorted ids, and the sorted ``ids`` themselves (so that a refused resume can name the images that changed;
    both None for a dataset without ids)."""
    ids = getattr(dataset, "ids", None)
    ordered = None if ids is None else sorted(map(str, ids))
    digest = None if ordered is None else hashlib.sha256("\n".join(ordered).encode()).hexdigest()
    return {
        "split": getattr(dataset, "split", None),
        "images": len(dataset),
        "ids_sha256": digest,
        "ids": ordered,
    }


def _changed_ids(recorded: dict, now: dict) -> str:
    """``"; removed: a, b; new: c"`` from the recorded and current ids, the first three of each named; empty where a
    record has no ids (an older version's) or the current dataset has none."""
    if recorded.get("ids") is None or now["ids"] is None:
        return ""
    before, after = set(recorded["ids"]), set(now["ids"])
    parts = []
    for label, ids in (("removed", sorted(before - after)), ("new", sorted(after - before))):
        if ids:
            parts.append(f"{label}: {some_of(ids)}")
    return "".join(f"; {part}" for part in parts)


def check_same_images(recorded: dict, dataset, where: str | Path) -> None:
    """Raise :class:`CheckpointError` (naming ``where``, and the removed and new ids where the record lists them)
    when ``dataset`` is not the training images ``recorded`` (:func:`training_images`; what a record lacks, an
    older version's, is not compared)."""
    now = training_images(dataset)
    changes = _changed_ids(recorded, now)
    if ("split" in recorded and recorded["split"] != now["split"]) or recorded.get(
        "images", now["images"]
    ) != now["images"]:
        raise CheckpointError(
            f"{where}: the run was trained on split {recorded.get('split')!r}"
            + (f" ({recorded['images']} images)" if "images" in recorded else "")
            + f", not on split {now['split']!r} ({now['images']} images){changes}; resume with the same data and "
            "split, or start a new run (another --out, or --overwrite)"
        )
    if recorded.get("ids_sha256") not in (None, now["ids_sha256"]):
        raise CheckpointError(
            f"{where}: the run was trained on other images (the ids differ, not their number{changes}); resume "
            "with the same data, or start a new run (another --out, or --overwrite)"
        )


class Trainer:
    """Trains ``method`` on ``dataset`` into ``run_dir``.

    Args:
        method: a registered method (see :mod:`partdiscovery.training.methods`).
        cfg: the resolved config, the one ``method`` was built from. The run records ``method.cfg``
            (saved to the run folder and every checkpoint): a method may complete the model section
            (SCOPS always has a learned background), and the saved config must rebuild that network.
        dataset: the training split.
        run_dir: output folder.
        device: torch device for the model and batches.
        resume: continue from the newest good checkpoint in ``run_dir``.
        overwrite: replace a previous run in ``run_dir``.
        progress: show a progress bar (falls back to log lines when stderr is not a terminal).
        info: extra entries for ``run_info.json`` (e.g. which foreground masks were used).
    """

    def __init__(
        self,
        method: Method,
        cfg: Config,
        dataset: PartDataset,
        run_dir: str | Path,
        device: str | torch.device = "cpu",
        resume: bool = False,
        overwrite: bool = False,
        progress: bool = True,
        info: dict | None = None,
    ) -> None:
        if dataclasses.replace(cfg, model=method.cfg.model) != method.cfg:
            raise ValueError("cfg is not the config the method was built from")
        check_config(method.cfg)
        self.method, self.cfg, self.dataset = method, method.cfg, dataset
        self.info = dict(info or {})
        self.run = RunFolder(Path(run_dir))
        self.device = torch.device(device)
        self.resume, self.overwrite, self.progress = resume, overwrite, progress
        self._training_set: TrainingSet | None = None  # made by the first loader, reused by a later phase's

    def fit(self, stop_at: int | None = None) -> dict:
        """Train to ``cfg.train.steps`` (from the newest checkpoint with ``resume``) and return the
        summary, also written to ``train_summary.json``.

        ``stop_at``: pause after that many steps instead, with a checkpoint there and no summary file (the
        run is unfinished; ``resume`` continues it exactly: the schedule and batches are those of the
        whole run). The returned summary then has ``"stopped_at"``.
        """
        cfg = self.cfg
        dist_info = self._start_processes()
        main = dist_info.is_main  # only the main process writes files
        lock = None
        if main:
            self.run.check(self.resume, self.overwrite, inputs=[(self.dataset.root, "dataset folder")])
            lock = self.run.lock()  # held until the summary is written: one writer per run folder
        try:
            if main:
                self.run.prepare(self.resume, self.overwrite)
            barrier()
            method = self._place_method(dist_info)
            optimizer = build_optimizer(method, cfg)
            schedule = build_schedule(optimizer, cfg)
            # Restore before writing config.yaml: a resume refused for another config leaves the run as is.
            resuming = self.resume and list_checkpoints(self.run.path)
            start_step = self._restore(optimizer, schedule) if resuming else 0
            if main:
                self._write_run_files(dist_info, start_step)
            shard = dist_info.shard(cfg.train.batch_size)
            end = cfg.train.steps if stop_at is None else min(stop_at, cfg.train.steps)
            last, bad_steps = {}, 0
            with (
                TrainingLog(self.run, cfg, start_step, main, self.progress) as log,
                warnings.catch_warnings(),
            ):
                # A skipped first step never calls optimizer.step(): torch warns of a misordered schedule, but the
                # rate is a function of the step on purpose, skipped steps included. (Set once for the loop: a
                # filter set per step would reset the registry that shows a repeated warning once.)
                warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before")
                started = time.perf_counter()
                for first, stop in phase_segments(cfg, start_step, end):
                    if first in phase_starts(cfg)[1:]:
                        optimizer.state.clear()  # a phase starts with fresh moments (its schedule starts anew too)
                    # The method's per-image maps may change with the phase (self-training's targets): one loader
                    # for each phase's steps.
                    for step, batch in enumerate(self._loader(method, shard, first, stop), start=first):
                        # The rate this step trains at, logged with it (the schedule moves on after the step).
                        lr = optimizer.param_groups[-1]["lr"]
                        losses, finite = train_step(
                            method,
                            to_device(batch, self.device),
                            optimizer,
                            step_generator(cfg.train.seed, step),
                            grad_clip=cfg.optim.grad_clip,
                            amp=cfg.train.amp and self.device.type == "cuda",
                            shard=shard if dist_info.enabled else None,
                        )
                        schedule.step()
                        if not finite:
                            bad_steps += 1
                            self._skip(step, losses["total"], bad_steps)
                            continue
                        bad_steps = 0
                        last = mean_across({k: float(v.detach()) for k, v in losses.items()}, self.device)
                        done = step + 1
                        log.step(done, lr, last, time.perf_counter() - started)
                        if done % cfg.train.checkpoint_every == 0 or done in (end, cfg.train.steps):
                            self._checkpoint(done, optimizer, schedule, main)
            summary = self._summary(dist_info, start_step, end, time.perf_counter() - started, last)
            if end < cfg.train.steps:
                return {**summary, "stopped_at": end}
            if main:
                atomic_write_json(self.run.summary, summary)
            return summary
        finally:
            if lock is not None:
                lock.release()

    # ------------------------------------------------------------------------------------- the steps of fit
    def _start_processes(self) -> DistInfo:
        """Join the distributed run, if launched as one (``torchrun``); one GPU per process."""
        dist_info = setup(self.device)
        self.device = process_device(self.device)
        if self.cfg.train.batch_size % dist_info.world_size:
            raise PartDiscoveryError(
                f"train.batch_size={self.cfg.train.batch_size} is not divisible by the "
                f"{dist_info.world_size} processes"
            )
        return dist_info

    def _place_method(self, dist_info: DistInfo) -> Method:
        """The method on the device in training mode; f compiled and distributed as configured."""
        if self.cfg.train.threads > 0:
            torch.set_num_threads(self.cfg.train.threads)
        method = self.method.to(self.device).train()
        if self.cfg.train.compile:
            method.net.compile()
        if dist_info.enabled:
            self._distribute(method)
        return method

    def _distribute(self, method: Method) -> None:
        """Wrap f in DistributedDataParallel (SyncBatchNorm on GPUs unless BN is frozen)."""
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda" and not self.cfg.model.freeze_bn:
            method.net = nn.SyncBatchNorm.convert_sync_batchnorm(method.net)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        method.wrap_net(lambda net: DistributedDataParallel(net, device_ids=device_ids))

    def _restore(self, optimizer, schedule) -> int:
        """Load the newest good checkpoint into the method, optimiser and schedule; its step. Refused when the
        config or the training split is not the run's: the rest of the run would not be the run its files say."""
        path, payload = load_latest(self.run.path)
        check_resume_config(checkpoint_config(payload, path), self.cfg, path)
        self._check_same_images()
        self.method.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        schedule.load_state_dict(payload["schedule"])
        return int(payload["step"])

    def _check_same_images(self) -> None:
        """The images ``run_info.json`` records must be this dataset's (a run of a version that did not record
        them is not checked)."""
        check_same_images(self.run.read_run_info(), self.dataset, self.run.run_info)

    def _write_run_files(self, dist_info: DistInfo, start_step: int) -> None:
        """config.yaml and run_info.json; on resume, metrics.csv cut back to the checkpoint."""
        atomic_write_text(self.run.config, self.cfg.to_yaml())
        # Which ids f saw: evaluate --split val warns when they include the validation ids. The list of ids goes
        # last, so that the record stays readable above it however many there are.
        images = training_images(self.dataset)
        ids = images.pop("ids")
        atomic_write_json(
            self.run.run_info,
            {
                "git_sha": git_sha(),
                "version": __version__,
                "torch": torch.__version__,
                "argv": sys.argv,
                "dataset": self.dataset.describe(),
                **images,
                "device": str(self.device),
                "world_size": dist_info.world_size,
                **self.info,
                "ids": ids,
            },
        )
        self.run.trim_metrics(start_step)

    def _loader(self, method: Method, shard, start_step: int, end: int) -> DataLoader:
        """Batches of steps ``start_step..end-1`` (this process's shard), a pure function of the seed; they carry
        the maps of ``method.feature_cache`` for ``start_step`` (steps of one phase:
        :func:`~partdiscovery.training.phases.phase_segments`)."""
        cfg = self.cfg
        sampler = StepBatchSampler(
            len(self.dataset),
            cfg.train.batch_size,
            end,
            cfg.train.seed,
            start_step,
            shard=(shard.offset, shard.size),
        )
        # The step only where the run has a second phase (self-training): a method written before phases existed
        # takes the device alone.
        cache = (
            method.feature_cache(self.device, start_step)
            if len(phase_starts(cfg)) > 1
            else method.feature_cache(self.device)
        )
        if self._training_set is None:
            self._training_set = TrainingSet(
                self.dataset, cfg.data, feature_size=cfg.data.input_size // cfg.loss.loss_stride
            )
        self._training_set.features = cache  # one set of decoded images for every phase; the phase's maps
        return DataLoader(
            self._training_set,
            batch_sampler=sampler,
            num_workers=cfg.data.num_workers,
            persistent_workers=cfg.data.num_workers > 0,
        )

    def _skip(self, step: int, total: torch.Tensor, bad_steps: int) -> None:
        """Warn about a skipped step; stop after ``train.max_bad_steps`` in a row."""
        warnings.warn(f"step {step}: non-finite loss ({float(total.detach())}), step skipped", stacklevel=2)
        if bad_steps >= self.cfg.train.max_bad_steps:
            saved = list_checkpoints(self.run.path)
            kept = (
                f"the last good checkpoint, {saved[0].name} in {self.run.checkpoints}, is intact"
                if saved
                else "no checkpoint had been written yet"
            )
            raise TrainingDivergedError(
                f"{bad_steps} consecutive steps had a non-finite loss (at step {step}); training stopped ({kept}); "
                "lower optim.lr or the loss weights, or check the data"
            )

    def _checkpoint(self, step: int, optimizer, schedule, main: bool) -> None:
        """Save a checkpoint after ``step`` steps (main process) and prune old ones; all processes wait."""
        if main:
            payload = {
                "model": self.method.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "step": step,
                "config": self.cfg.to_dict(),
                "git_sha": git_sha(),
                "version": __version__,
            }
            save_checkpoint(checkpoint_path(self.run.path, step), payload)
            if self.cfg.train.keep_checkpoints > 0:
                prune_checkpoints(self.run.path, keep=self.cfg.train.keep_checkpoints)
        barrier()

    def _summary(
        self, dist_info: DistInfo, start_step: int, end: int, wall: float, last: dict[str, float]
    ) -> dict:
        cfg = self.cfg
        trained = max(0, end - start_step)
        return {
            "steps": cfg.train.steps,
            "steps_this_session": trained,
            "batch_size": cfg.train.batch_size,
            "input_size": cfg.data.input_size,
            "wall_s": round(wall, 3),
            "images_per_s": round(trained * cfg.train.batch_size / wall, 3) if wall > 0 and trained else 0.0,
            # images_per_s counts the global batch: all processes together.
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "final_losses": last,
            **{f"loss_{k}": v for k, v in last.items()},
            "finite": all(math.isfinite(v) for v in last.values()),
            "world_size": dist_info.world_size,
        }
