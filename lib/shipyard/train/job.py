"""Run a ``torch`` job: Ray Train's ``TorchTrainer`` with the spec's loop, scaling,
failure and checkpoint settings.

1. Ray starts (a local instance sized from ``spec.resources``) or is joined (the cluster
   a ``ray`` backend job runs in); the workers must fit on it, or the job fails with what
   is missing (a GPU, CPUs): at once locally, after ``placement_timeout`` on an existing
   cluster (which an autoscaler may still be growing), never after a silent wait.
2. ``torch.data``, if any, is read with Ray Data and split into ``train``/``validation``.
3. ``TorchTrainer.fit()`` runs the loop on every worker. Runs live under
   ``<run dir>/train/<job id>`` (or ``$SHIPYARD_TRAIN_STORAGE/<job id>``, storage every
   node of a multi-node cluster reaches: :mod:`shipyard.train.storage`), so a retried job finds the checkpoints of the
   attempt before it and continues from the latest (Ray Train restores a run of the same
   name).
4. Every ``session.report`` reaches the job's progress (epoch, losses, accuracy) through a
   Ray queue fed by a callback on the Train controller.
5. The latest checkpoint's model (state dict, and ``torch.export``/TorchScript when the
   model allows) and metric history are copied to ``artifacts/``.
6. The report's figures (loss, accuracy, learning rate, throughput per epoch) are drawn
   here in the driver from that history, not on the workers
   (:mod:`shipyard.report.torch_figures`).
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.train import UserCallback

from shipyard.core.errors import ClusterError, ResourcesError
from shipyard.spec.entrypoints import resolve_callable
from shipyard.train.session import EXPORT_FILES, HISTORY_FILE, MODEL_FILE
from shipyard.train.storage import train_storage

if TYPE_CHECKING:
    from shipyard.runtime.ray_session import RaySession
    from shipyard.runtime.context import JobContext
    from shipyard.train.spec import ScalingSpec, TorchWorkload, TrainDataSpec

__all__ = ["run", "check_placeable", "ProgressCallback"]

log = logging.getLogger("shipyard.train")

#: Ray Train's own bound on placing the worker group (read by its controller).
_START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"
#: How often the controller polls the workers. A worker's report waits for that poll, so
#: Ray's default of 2 s made every short epoch last 2 s; polling costs a few ms.
_POLL_ENV, _POLL_SECONDS = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.1"


def check_placeable(scaling: ScalingSpec, total: dict[str, float], where: str) -> None:
    """Raise :class:`ResourcesError` when a cluster with ``total`` resources can never
    hold the workers ``scaling`` asks for.

    Examples
    --------
    >>> from shipyard.train.spec import ScalingSpec
    >>> check_placeable(ScalingSpec(workers=2), {"CPU": 2.0}, "the local Ray instance")
    >>> check_placeable(ScalingSpec(workers=1, use_gpu=True), {"CPU": 2.0}, "the local Ray instance")
    Traceback (most recent call last):
    ...
    shipyard.core.errors.ResourcesError: spec.torch.scaling.use_gpu is true, so each of the 1 workers needs a GPU, but the local Ray instance has no GPU; set use_gpu: false to train on CPUs, or submit to a cluster with GPUs
    """
    gpus, cpus = total.get("GPU", 0.0), total.get("CPU", 0.0)
    if scaling.use_gpu and gpus < scaling.workers:
        has = "no GPU" if not gpus else f"only {gpus:g} GPUs"
        raise ResourcesError(
            f"spec.torch.scaling.use_gpu is true, so each of the {scaling.workers} workers "
            f"needs a GPU, but {where} has {has}; set use_gpu: false to train on CPUs, or "
            "submit to a cluster with GPUs"
        )
    needed = scaling.workers * scaling.cpus_per_worker
    if cpus < needed:
        raise ResourcesError(
            f"spec.torch.scaling asks for {scaling.workers} workers x "
            f"{scaling.cpus_per_worker} CPU = {needed} CPUs, but {where} has {cpus:g}; "
            "lower scaling.workers, or raise spec.resources (workers x threads_per_worker "
            "sizes a local Ray instance)"
        )


class ProgressCallback(UserCallback):
    """Runs on the Ray Train controller: forwards each report (rank 0's metrics) and each
    worker failure to the driver through a Ray queue."""

    def __init__(self, queue):
        self.queue = queue

    def after_report(self, run_context, metrics, checkpoint):
        self.queue.put_nowait({"kind": "report", "metrics": metrics[0] if metrics else {},
                               "checkpoint": checkpoint is not None, "at": time.time()})

    def after_exception(self, run_context, worker_exceptions):
        summary = {rank: f"{type(err).__name__}: {err}".splitlines()[0][:300]
                   for rank, err in worker_exceptions.items()}
        self.queue.put_nowait({"kind": "failure", "workers": summary, "at": time.time()})


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    """The per-epoch metrics worth showing: numbers, without confusion matrices."""
    return {k: v for k, v in metrics.items()
            if not k.endswith("confusion") and isinstance(v, (int, float, str, type(None)))}


class _ProgressPump:
    """Drains the callback's queue on a thread into the job's progress."""

    def __init__(self, ctx: JobContext, epochs: int | None):
        from ray.util.queue import Queue

        self.ctx = ctx
        self.epochs = epochs
        self.queue = Queue(actor_options={"num_cpus": 0})
        self.reports: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="train-progress", daemon=True)
        self._thread.start()

    def _handle(self, item: dict[str, Any]) -> None:
        if item["kind"] == "failure":
            self.failures.append(item)
            self.ctx.logger.warning("worker failure (%d so far): %s", len(self.failures),
                                    item["workers"])
            self.ctx.progress(worker_failures=len(self.failures),
                              message="a worker failed; restarting from the latest checkpoint")
            return
        self.reports.append(item)
        metrics = _plain(item["metrics"])
        epoch = metrics.get("epoch")
        done = epoch + 1 if isinstance(epoch, int) else len(self.reports)
        self.ctx.logger.info("epoch %s: %s", epoch, ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in metrics.items() if k != "epoch"))
        self.ctx.progress("train", done=done, total=self.epochs, unit="epochs", metrics=metrics)

    def _pump(self) -> None:
        from ray.util.queue import Empty

        while not self._stop.is_set():
            try:
                self._handle(self.queue.get(timeout=0.5))
            except Empty:
                continue
            except Exception as err:  # the queue actor went away with Ray: nothing more comes
                if not self._stop.is_set():
                    log.warning("progress queue: %s", err)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            return  # still busy with an item: two threads must not both handle items
        try:
            while not self.queue.empty():
                self._handle(self.queue.get_nowait())
        except Exception:  # Ray may already be shutting down; progress is informative
            pass


def _read_dataset(data: TrainDataSpec, columns: list[str] | None):
    import ray.data

    from shipyard.data.files import filesystem

    fs, path = filesystem(data.path, data.storage_options)
    kwargs: dict[str, Any] = {}
    if "file" not in fs.protocol:  # Ray Data reads fsspec filesystems through Arrow
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        kwargs["filesystem"] = PyFileSystem(FSSpecHandler(fs))
    fmt = data.resolved_format
    if fmt == "parquet":
        dataset = ray.data.read_parquet(path, columns=columns, **kwargs)
    else:
        dataset = (ray.data.read_csv(path, **kwargs) if fmt == "csv"
                   else ray.data.read_json(path, lines=True, **kwargs))
        dataset = dataset.select_columns(columns) if columns else dataset
    if data.sample is not None and data.sample < 1:
        dataset = dataset.random_sample(data.sample, seed=data.seed)
    return dataset


def loop_config(block: TorchWorkload) -> dict[str, Any]:
    """The config the loop gets: the spec's, with ``features`` filled in (every column of
    ``torch.data`` but the ``target``) when a data job names only its target."""
    config = dict(block.config)
    target = config.get("target")
    if block.data is not None and isinstance(target, str) and "features" not in config:
        from shipyard.data.schema import read_schema

        config["features"] = [c for c in read_schema(block.data).names() if c != target]
    return config


def _datasets(block: TorchWorkload, config: dict[str, Any]) -> dict[str, Any]:
    """``train`` (and ``validation``) from ``torch.data``, materialised before training:
    the workers reserve the CPUs, so nothing must be left for Ray Data to read then."""
    data = block.data
    features, target = config.get("features"), config.get("target")
    columns = [*features, target] if isinstance(features, list) and isinstance(target, str) else None
    dataset = _read_dataset(data, columns)
    if data.validation > 0:
        train, validation = dataset.train_test_split(test_size=data.validation, shuffle=True,
                                                     seed=data.seed)
        return {"train": train.materialize(), "validation": validation.materialize()}
    return {"train": dataset.materialize()}


def _wait_for_capacity(ray_session: RaySession, scaling: ScalingSpec) -> None:
    """Check the workers fit an existing cluster, which may still be growing (an
    autoscaler), so it gets ``placement_timeout`` to get there. (A local instance is what
    it is: :func:`run` checks it before starting it.)"""
    deadline = time.monotonic() + scaling.placement_timeout
    while True:
        try:
            check_placeable(scaling, ray_session.cluster_resources(),
                            f"the Ray cluster at {ray_session.address}")
            return
        except ResourcesError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(2)


def _failure_message(err: BaseException, block: TorchWorkload) -> BaseException:
    from ray.train import ControllerError, WorkerGroupError

    if isinstance(err, ControllerError):
        cause = err.controller_failure
        if "StartupTimeout" in type(cause).__name__:
            return ClusterError(
                f"Ray could not place {block.scaling.workers} training workers within "
                f"{block.scaling.placement_timeout:g}s (spec.torch.scaling.placement_timeout): "
                "the cluster has the resources but they are taken by other work"
            )
        return RuntimeError(f"the Ray Train controller failed: {type(cause).__name__}: {cause}")
    if isinstance(err, WorkerGroupError):
        rank, cause = sorted(err.worker_failures.items())[0]
        first = str(cause).strip().splitlines()
        text = f"{type(cause).__name__}: {first[-1] if first else ''}"
        return RuntimeError(
            f"training failed on worker {rank} after {block.failure.max_failures} "
            f"restart(s) allowed (spec.torch.failure.max_failures): {text[:400]}"
        )
    return err


def _copy_model(checkpoint, artifacts: Path) -> dict[str, Any]:
    saved: dict[str, Any] = {"export_format": None}
    with checkpoint.as_directory() as directory:
        directory = Path(directory)
        for name in (MODEL_FILE, HISTORY_FILE, *EXPORT_FILES.values()):
            if (directory / name).is_file():
                shutil.copyfile(directory / name, artifacts / name)
        saved["model_state_dict"] = str(artifacts / MODEL_FILE)
        saved["metrics"] = str(artifacts / HISTORY_FILE)
        for fmt, name in EXPORT_FILES.items():
            if (directory / name).is_file():
                saved.update(export_format=fmt, exported_model=str(artifacts / name))
                break
    return saved


def _history(artifacts: Path) -> list[dict[str, Any]]:
    """The metric history, from the copy :func:`_copy_model` made (a checkpoint on object
    storage is downloaded once, not once per file wanted)."""
    import json

    path = artifacts / HISTORY_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def run(block: TorchWorkload, ctx: JobContext) -> dict[str, Any]:
    """Train with Ray Train; return metrics per epoch, test metrics and the model's paths."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.train.v2.api.config import LoggingConfig

    if ctx.sample is not None and block.data is None:
        # a trial run samples torch.data; a loop that loads its own data gets all of it
        ctx.logger.warning("a trial run (--sample %g) samples torch.data, which this job "
                           "does not set: %s loads its data itself and trains on all of it",
                           ctx.sample, block.train_loop)
    ray_session = ctx.ray
    planned = ray_session.planned_resources()
    if planned is not None:
        # what a local instance cannot place is refused before paying for its start
        check_placeable(block.scaling, planned, "the local Ray instance")
    ctx.progress("start", message="starting Ray")
    ray_session.start()
    ctx.progress(ray=ray_session.describe(), ray_dashboard=ray_session.dashboard_url)
    if planned is None:
        _wait_for_capacity(ray_session, block.scaling)
    config = loop_config(block)
    datasets = _datasets(block, config) if block.data is not None else None
    loop = resolve_callable(block.train_loop)
    scaling = block.scaling
    per_worker = {"CPU": scaling.cpus_per_worker, **({"GPU": 1} if scaling.use_gpu else {})}
    os.environ[_START_TIMEOUT_ENV] = str(scaling.placement_timeout)
    os.environ.setdefault(_POLL_ENV, _POLL_SECONDS)
    pump = _ProgressPump(ctx, block.epochs)
    storage_path, storage_filesystem = train_storage(ctx.run_dir)
    try:
        trainer = TorchTrainer(
            loop,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=scaling.workers, use_gpu=scaling.use_gpu,
                                         resources_per_worker=per_worker),
            run_config=RunConfig(
                name=ctx.job_id,
                storage_path=storage_path,
                storage_filesystem=storage_filesystem,
                failure_config=FailureConfig(max_failures=block.failure.max_failures,
                                             # a worker group that cannot be placed fails
                                             # the run after placement_timeout, no retries
                                             controller_failure_limit=0),
                checkpoint_config=CheckpointConfig(
                    num_to_keep=block.checkpoint.num_to_keep,
                    checkpoint_score_attribute=block.checkpoint.score,
                    checkpoint_score_order=block.checkpoint.mode),
                callbacks=[ProgressCallback(pump.queue)],
                # Ray Train logs every report at INFO; the job log has them once, from us
                logging_config=LoggingConfig(log_level="WARNING"),
            ),
            datasets=datasets,
        )
        ctx.progress("place", message=f"placing {scaling.workers} workers")
        fit_started = time.time()
        try:
            result = trainer.fit()
        except Exception as err:
            clear = _failure_message(err, block)
            if clear is err:
                raise
            raise clear from err
        fit_seconds = time.time() - fit_started
    finally:
        pump.stop()
    if result.checkpoint is None:
        raise RuntimeError(f"{block.train_loop} reported no checkpoint; train loops must "
                           "call session.report(...) at least once")
    saved = _copy_model(result.checkpoint, ctx.artifacts_dir)
    history = _history(ctx.artifacts_dir)
    ctx.add_output(ctx.artifacts_dir / MODEL_FILE)
    metrics = [_plain(entry) for entry in history]
    if ctx.figures.enabled:
        _draw_figures(ctx, metrics)
    return {
        "metrics": metrics,
        "test_metrics": result.return_value,
        "final_metrics": _plain(result.metrics or {}),
        "best_checkpoint": _best(result, block),
        "artifacts": saved,
        "checkpoint_dir": str(result.path),
        "worker_failures": len(pump.failures),
        "resumed_from_epoch": next((e["resumed_from"] for e in history
                                    if e.get("resumed_from") is not None), None),
        "scaling": {"workers": scaling.workers, "use_gpu": scaling.use_gpu,
                    "backend": "nccl" if scaling.use_gpu else "gloo",
                    "cpus_per_worker": scaling.cpus_per_worker},
        "timing": _timing(ray_session, pump.reports, history, fit_started, fit_seconds),
    }


def _draw_figures(ctx: JobContext, metrics: list[dict[str, Any]]) -> None:
    from shipyard.report.torch_figures import draw_torch_figures

    try:
        draw_torch_figures(ctx.figures, metrics)
    except Exception as err:  # noqa: BLE001 - the report is never worth failing the job
        ctx.logger.warning("figures not drawn: %s: %s", type(err).__name__, err)


def _best(result, block: TorchWorkload) -> dict[str, Any] | None:
    if not block.checkpoint.score or not result.best_checkpoints:
        return None
    try:
        best = result.get_best_checkpoint(block.checkpoint.score, block.checkpoint.mode)
        if best is None:
            return None
    except RuntimeError as err:  # the loop never reported that metric: say so, keep the run
        log.warning("spec.torch.checkpoint.score %r: %s", block.checkpoint.score, err)
        return {"score": block.checkpoint.score, "error": f"the loop never reported "
                f"{block.checkpoint.score!r}; the checkpoints kept are the latest ones"}
    metrics = None
    for checkpoint, checkpoint_metrics in result.best_checkpoints:
        if checkpoint.path == best.path:
            metrics = checkpoint_metrics
    return {"path": best.path, "score": block.checkpoint.score,
            "epoch": (metrics or {}).get("epoch"),
            "value": (metrics or {}).get(block.checkpoint.score)}


def _timing(ray_session: RaySession, reports: list[dict[str, Any]],
            history: list[dict[str, Any]], fit_started: float, fit_seconds: float) -> dict:
    """Start-up (Ray, placing the workers) apart from training, and the steady-state
    throughput: the median of the epochs' samples/s, the first (warm-up) epoch left out."""
    timing: dict[str, Any] = {"ray_start_s": round(ray_session.start_seconds or 0.0, 3),
                              "fit_s": round(fit_seconds, 3)}
    if reports:
        first = reports[0]
        # the worker's clock starts when its session does, after placement and DDP set-up
        startup = first["at"] - fit_started - float(first["metrics"].get("elapsed_s", 0.0))
        timing["worker_startup_s"] = round(max(startup, 0.0), 3)
    rates = [e["samples_per_s"] for e in history if isinstance(e.get("samples_per_s"), float)]
    steady = rates[1:] if len(rates) > 2 else rates
    if steady:
        timing["samples_per_s"] = round(statistics.median(steady), 1)
    return timing
