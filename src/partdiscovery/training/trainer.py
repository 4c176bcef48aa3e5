"""One readable training loop, generic over methods (anything with ``training_step``).

Read top to bottom: prepare the run folder -> build optimiser and schedule -> maybe resume -> for
each step: batch, losses, skip non-finite, backward, clip, step, log, checkpoint -> summary.
"""

from __future__ import annotations

import csv
import json
import math
import resource
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from filelock import FileLock, Timeout
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from partdiscovery import __version__
from partdiscovery.config import Config
from partdiscovery.data.base import PartDataset
from partdiscovery.data.transforms import StepBatchSampler, TrainingSet
from partdiscovery.errors import CheckpointError, OutputPathError, PartDiscoveryError, RunLockedError
from partdiscovery.training.checkpoint import (
    checkpoint_config,
    checkpoint_path,
    git_sha,
    list_checkpoints,
    load_latest,
    prune_checkpoints,
    save_checkpoint,
)
from partdiscovery.utils.distributed import barrier, mean_across, setup
from partdiscovery.utils.io import atomic_write_json, atomic_write_text, remove_stale_temporaries
from partdiscovery.utils.outputs import LOCK, OutputFolder, make_folder
from partdiscovery.utils.seed import torch_generator

SUMMARY_FILE = "train_summary.json"


class TrainingDivergedError(PartDiscoveryError):
    """Too many consecutive steps with a non-finite loss."""


RUN_KIND = "run"
LOCK_FILE = LOCK


def _legacy_run(path: Path) -> bool:
    """A run folder written before run folders were marked: checkpoints of ours and our run_info.json."""
    info = path / "run_info.json"
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
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def output(self) -> OutputFolder:
        return OutputFolder(self.path, RUN_KIND, legacy=_legacy_run)

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
        make_folder(self.path, "run folder")
        lock = FileLock(self.path / LOCK_FILE, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunLockedError(
                f"{self.path}: another partdiscovery process is training into this run folder (its lock "
                f"{self.path / LOCK_FILE} is held); wait for it to finish or choose another --out"
            ) from None
        return lock

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """Under the lock: check again (the folder may have changed since :meth:`check`), mark the
        folder as ours, remove temporaries of an interrupted write, and with ``overwrite`` (and not
        ``resume``) remove the previous run's checkpoints, log and summary: files of ours only."""
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


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)


def build_optimizer(method: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    groups = method.param_groups(cfg.optim)
    o = cfg.optim
    if o.optimizer == "adam":
        return torch.optim.Adam(groups, lr=o.lr, weight_decay=o.weight_decay)
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise PartDiscoveryError(f"unknown optim.optimizer {o.optimizer!r}; choose adam or sgd")


def build_schedule(optimizer: torch.optim.Optimizer, cfg: Config) -> torch.optim.lr_scheduler.LRScheduler:
    steps, power = max(1, cfg.train.steps), cfg.optim.poly_power
    if cfg.optim.schedule == "poly":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps) ** power)
    if cfg.optim.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    raise PartDiscoveryError(f"unknown optim.schedule {cfg.optim.schedule!r}; choose poly or constant")


class Trainer:
    """Trains ``method`` on ``dataset`` into ``run_dir``.

    Args:
        method: a registered method (see :mod:`partdiscovery.training.method`).
        cfg: the resolved config (saved to the run folder and every checkpoint).
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
        method: nn.Module,
        cfg: Config,
        dataset: PartDataset,
        run_dir: str | Path,
        device: str | torch.device = "cpu",
        resume: bool = False,
        overwrite: bool = False,
        progress: bool = True,
        info: dict | None = None,
    ) -> None:
        self.method, self.cfg, self.dataset = method, cfg, dataset
        self.info = dict(info or {})
        self.run = RunFolder(Path(run_dir))
        self.device = torch.device(device)
        self.resume, self.overwrite, self.progress = resume, overwrite, progress

    def _checkpoint_payload(self, step: int, optimizer, schedule) -> dict:
        return {
            "model": self.method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "step": step,
            "config": self.cfg.to_dict(),
            "git_sha": git_sha(),
            "version": __version__,
        }

    def _restore(self, optimizer, schedule) -> int:
        path, payload = load_latest(self.run.path)
        stored = checkpoint_config(payload, path)
        if stored.model != self.cfg.model or stored.method != self.cfg.method:
            raise CheckpointError(
                f"{path}: was trained with a different model or method config; "
                "resume with the same settings or start a new run"
            )
        self.method.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        schedule.load_state_dict(payload["schedule"])
        return int(payload["step"])

    def _trim_metrics(self, start_step: int) -> None:
        """On resume, drop log rows past the checkpoint so the CSV has each step once."""
        if not self.run.metrics.exists():
            return
        with open(self.run.metrics, newline="") as fh:
            rows = list(csv.reader(fh))
        kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= start_step]
        atomic_write_text(self.run.metrics, "".join(",".join(r) + "\n" for r in kept))

    def _distribute(self, method: nn.Module) -> None:
        """Wrap f in DistributedDataParallel (SyncBatchNorm on GPUs unless BN is frozen)."""
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda" and not self.cfg.model.freeze_bn:
            method.net = nn.SyncBatchNorm.convert_sync_batchnorm(method.net)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        method.wrap_net(lambda net: DistributedDataParallel(net, device_ids=device_ids))

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise PartDiscoveryError(
                "train.tensorboard=true needs the tensorboard package: pip install tensorboard"
            ) from None
        return SummaryWriter(str(self.run.path / "tensorboard"))

    def fit(self) -> dict:
        cfg = self.cfg
        dist_info = setup(self.device)
        if dist_info.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", dist_info.local_rank)
        if cfg.train.batch_size % dist_info.world_size:
            raise PartDiscoveryError(
                f"train.batch_size={cfg.train.batch_size} is not divisible by the "
                f"{dist_info.world_size} processes"
            )
        main = dist_info.is_main  # only the main process writes files
        lock = None
        if main:
            self.run.check(
                self.resume, self.overwrite, inputs=[(self.dataset.root, "dataset folder")]
            )
            lock = self.run.lock()  # held until the summary is written: one writer per run folder
        try:
            return self._fit(dist_info)
        finally:
            if lock is not None:
                lock.release()

    def _fit(self, dist_info) -> dict:
        cfg, main = self.cfg, dist_info.is_main
        if main:
            self.run.prepare(self.resume, self.overwrite)
        barrier()
        if cfg.train.threads > 0:
            torch.set_num_threads(cfg.train.threads)

        method = self.method.to(self.device).train()
        if cfg.train.compile:
            method.net.compile()
        if dist_info.enabled:
            self._distribute(method)
        optimizer = build_optimizer(method, cfg)
        schedule = build_schedule(optimizer, cfg)
        # Restore before writing config.yaml: a resume refused for a different config leaves the run as it was.
        start_step = (
            self._restore(optimizer, schedule) if self.resume and list_checkpoints(self.run.path) else 0
        )
        if main:
            atomic_write_text(self.run.config, cfg.to_yaml())
            atomic_write_json(
                self.run.path / "run_info.json",
                {
                    "git_sha": git_sha(),
                    "version": __version__,
                    "torch": torch.__version__,
                    "argv": sys.argv,
                    "dataset": self.dataset.describe(),
                    "device": str(self.device),
                    "world_size": dist_info.world_size,
                    **self.info,
                },
            )
            self._trim_metrics(start_step)

        shard = dist_info.shard(cfg.train.batch_size)
        sampler = StepBatchSampler(
            len(self.dataset),
            cfg.train.batch_size,
            cfg.train.steps,
            cfg.train.seed,
            start_step,
            shard=(shard.offset, shard.size),
        )
        loader = DataLoader(
            TrainingSet(
                self.dataset,
                cfg.data,
                features=method.feature_cache(self.device),
                feature_size=cfg.data.input_size // cfg.loss.loss_stride,
            ),
            batch_sampler=sampler,
            num_workers=cfg.data.num_workers,
            persistent_workers=cfg.data.num_workers > 0,
        )
        interactive = main and self.progress and sys.stderr.isatty()
        bar = tqdm(
            total=cfg.train.steps,
            initial=start_step,
            disable=not interactive,
            desc="train",
            dynamic_ncols=True,
        )
        log_file = open(self.run.metrics, "a", newline="") if main else None
        board = self._tensorboard() if main and cfg.train.tensorboard else None
        writer, last, bad_steps, step = None, {}, 0, start_step
        started = time.perf_counter()
        try:
            for step, batch in enumerate(loader, start=start_step):
                batch = {
                    k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                    for k, v in batch.items()
                }
                # A skipped (non-finite) step must leave no trace: its forward pass already updated the
                # BatchNorm running statistics, so keep a copy to restore.
                buffers = [b.detach().clone() for b in method.buffers()]
                with torch.autocast(
                    self.device.type,
                    dtype=torch.bfloat16,
                    enabled=cfg.train.amp and self.device.type == "cuda",
                ):
                    losses = method.training_step(
                        batch, torch_generator(cfg.train.seed, 3, step), shard if dist_info.enabled else None
                    )
                total = losses["total"]
                finite = bool(torch.isfinite(total))
                if dist_info.enabled:  # every process must take the same decision
                    finite = mean_across({"finite": float(finite)}, self.device)["finite"] == 1.0
                if not finite:
                    bad_steps += 1
                    with torch.no_grad():
                        for buf, saved in zip(method.buffers(), buffers):
                            buf.copy_(saved)
                    warnings.warn(
                        f"step {step}: non-finite loss ({float(total.detach())}), step skipped", stacklevel=1
                    )
                    if bad_steps >= cfg.train.max_bad_steps:
                        raise TrainingDivergedError(
                            f"{bad_steps} consecutive steps had a non-finite loss (at step {step}); training "
                            f"stopped. The last good checkpoint in {self.run.path / 'checkpoints'} is intact; "
                            "lower optim.lr or check the data"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    schedule.step()
                    continue
                bad_steps = 0
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                if cfg.optim.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(method.parameters(), cfg.optim.grad_clip)
                optimizer.step()
                schedule.step()

                last = mean_across({k: float(v.detach()) for k, v in losses.items()}, self.device)
                done = step + 1
                if main and (done % cfg.train.log_every == 0 or done == cfg.train.steps):
                    row = {
                        "step": done,
                        "lr": optimizer.param_groups[-1]["lr"],
                        **last,
                        "elapsed_s": round(time.perf_counter() - started, 3),
                    }
                    if writer is None:
                        writer = csv.DictWriter(log_file, fieldnames=list(row))
                        if log_file.tell() == 0:
                            writer.writeheader()
                    writer.writerow(row)
                    if board is not None:
                        for name, value in row.items():
                            if name != "step":
                                board.add_scalar(f"train/{name}", value, done)
                    log_file.flush()
                    if not interactive and self.progress:
                        print(
                            f"step {done}/{cfg.train.steps} "
                            + " ".join(f"{k}={v:.4g}" for k, v in last.items()),
                            file=sys.stderr,
                            flush=True,
                        )
                bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()}, refresh=False)
                bar.update(1)
                if done % cfg.train.checkpoint_every == 0 or done == cfg.train.steps:
                    if main:
                        save_checkpoint(
                            checkpoint_path(self.run.path, done),
                            self._checkpoint_payload(done, optimizer, schedule),
                        )
                        if cfg.train.keep_checkpoints > 0:
                            prune_checkpoints(self.run.path, keep=cfg.train.keep_checkpoints)
                    barrier()
        finally:
            bar.close()
            if log_file is not None:
                log_file.close()
            if board is not None:
                board.close()

        wall = time.perf_counter() - started
        trained = max(0, cfg.train.steps - start_step)
        summary = {
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
        if main:
            atomic_write_json(self.run.summary, summary)
        return summary
