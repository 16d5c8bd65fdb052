"""The context a workload runs in: the Dask client, the Ray session, the run directory,
a logger, a progress reporter, and the list of outputs it wrote.

A ``python`` job's function receives it as its first argument::

    def main(ctx, rows=1000):
        ctx.progress(phase="load", done=0, total=3)
        df = dd.read_parquet(...)          # runs on ctx.client's cluster
        ctx.add_output("out/table.parquet")
        return {"rows": rows}
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.atomic import write_json_atomic
from shipyard.core.home import RunDir
from shipyard.report.figures import FigureSet

if TYPE_CHECKING:
    from distributed import Client

    from shipyard.runtime.dask_session import DaskSession
    from shipyard.runtime.ray_session import RaySession
    from shipyard.spec import JobSpec

__all__ = ["JobContext"]


class JobContext:
    """Everything one attempt of a job may use.

    Parameters
    ----------
    job_id : str
    attempt : int
    run_dir : Path
        The job's run directory (``$SHIPYARD_HOME/runs/<job-id>``).
    spec : JobSpec
    dask : DaskSession
        Started on first use of :attr:`client`.
    ray : RaySession, optional
        The Ray cluster of ``torch`` jobs (started by the workload that needs it).
    on_progress : callable, optional
        Called with the merged progress dict (the runner writes it to the job store).
    on_dask_start : callable, optional
        Called with the Dask client when it starts, before the workload uses it (the
        runner counts its tasks).

    Attributes
    ----------
    figures : FigureSet
        Where the workload draws its report's figures (``report/figures/*.png``); the
        runner lists them in ``result.json`` under ``figures``.
    sample : float or None
        The share of its data a trial run (``shipyard run --sample``) should use; None
        in a real run. A python job that generates or reads data itself honours it.
    """

    #: Progress is written at most this often (seconds), except phase changes.
    PROGRESS_INTERVAL = 0.25

    def __init__(self, *, job_id: str, attempt: int, run_dir: Path, spec: JobSpec,
                 dask: DaskSession, ray: RaySession | None = None,
                 on_progress: Callable[[dict], None] | None = None,
                 on_dask_start: Callable[[Client], None] | None = None):
        self.job_id = job_id
        self.attempt = attempt
        self.run_dir = RunDir(run_dir)
        self.spec = spec
        self.logger = logging.getLogger(f"shipyard.job.{spec.name}")
        self.outputs: list[str] = []
        self.figures = FigureSet(self.run_dir, enabled=spec.spec.report.figures)
        self.sample = spec.spec.sample
        self._dask = dask
        self.ray = ray
        self._on_progress = on_progress
        self._on_dask_start = on_dask_start
        self._progress: dict[str, Any] = {}
        self._last_write = 0.0
        self._dirty = False
        # progress comes from the workload and from the runner's task poller (a thread)
        self._lock = threading.RLock()
        # until the workload names its first phase: imports, starting the cluster
        self._phases: list[dict[str, Any]] = [{"phase": "start", "started_at": time.time()}]
        self._tasks_now = (0, 0)      # the Dask tasks this job's client finished / submitted
        self._tasks_base = (0, 0)     # ... when the current phase began
        self._phase_done_base: float | None = None

    @property
    def client(self) -> Client:
        """The attempt's Dask client (the cluster starts on first use)."""
        first = not self._dask.started
        client = self._dask.client
        if first:
            if self._on_dask_start is not None:
                self._on_dask_start(client)
            self.progress(dashboard=self._dask.dashboard_link)
        return client

    @property
    def artifacts_dir(self) -> Path:
        """``<run dir>/artifacts``, created on first use: files the job keeps."""
        path = self.run_dir / "artifacts"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def add_output(self, path: str | Path) -> None:
        """Record a path the job wrote; ``result.json`` lists them under ``outputs``.

        Local paths are made absolute (the job's working directory is not the reader's);
        URLs (``s3://...``) are kept as they are.
        """
        text = str(path)
        if "://" not in text:
            text = str(Path(text).resolve())
        if text not in self.outputs:
            self.outputs.append(text)

    def progress(self, phase: str | None = None, *, done: float | None = None,
                 total: float | None = None, message: str | None = None,
                 unit: str | None = None, **fields: Any) -> None:
        """Report where the job is; ``shipyard status --json`` shows it under ``progress``.

        Fields merge with what was reported before; a new ``phase`` clears ``done``,
        ``total``, ``unit`` and ``message`` of the old one, and starts its clock (the
        phase timings in ``result.json`` and the report). ``eta_seconds`` is estimated
        from the phase's rate: its Dask tasks when it runs any, else ``done`` moving
        within the phase.

        Parameters
        ----------
        phase : str, optional
            The current phase (``load``, ``train``, ...).
        done, total : number, optional
            How far into the phase (steps, rows, epochs).
        message : str, optional
            A short note for people.
        unit : str, optional
            What ``done`` and ``total`` count (``epochs``, ``steps``, ...).
        **fields
            Anything else JSON-able.
        """
        with self._lock:
            now = time.time()
            new_phase = phase is not None and phase != self._progress.get("phase")
            if new_phase:
                continuing = self._phases and self._phases[-1]["phase"] == phase
                if not continuing:
                    self._close_phase(now)
                    self._phases.append({"phase": phase, "started_at": now})
                for key in ("done", "total", "message", "unit", "tasks", "eta_seconds"):
                    self._progress.pop(key, None)
                self._progress["phase"] = phase
                self._progress["phase_started_at"] = now
                self._tasks_base = self._tasks_now
                self._phase_done_base = done
            for key, value in (("done", done), ("total", total), ("message", message),
                               ("unit", unit)):
                if value is not None:
                    self._progress[key] = value
            if self._phase_done_base is None and done is not None:
                self._phase_done_base = done
            self._progress.update(fields)
            self._progress["attempt"] = self.attempt
            self._progress["updated_at"] = now
            self._estimate(now)
            self._dirty = True
            if new_phase or time.monotonic() - self._last_write >= self.PROGRESS_INTERVAL:
                self.flush_progress()

    def task_counts(self, done: int, total: int) -> None:
        """The Dask tasks this job has finished and submitted so far (the runner's
        poller calls this); progress shows those of the current phase as ``tasks``."""
        with self._lock:
            if (done, total) == self._tasks_now:
                return
            self._tasks_now = (done, total)
            # the phase's tasks: those submitted in it and those still unfinished from
            # before (a graph submitted in one phase may compute in the next)
            base_done = self._tasks_base[0]
            self.progress(tasks={"done": max(done - base_done, 0),
                                 "total": max(total - base_done, 0)})

    def _estimate(self, now: float) -> None:
        """``eta_seconds`` of the current phase, from its rate so far (none until it moves)."""
        started = self._progress.get("phase_started_at", now)
        tasks = self._progress.get("tasks") or {}
        if tasks.get("done") and tasks.get("total"):
            done, left = tasks["done"], tasks["total"] - tasks["done"]
        elif (self._progress.get("total") and self._phase_done_base is not None
              and self._progress.get("done", 0) > self._phase_done_base):
            done = self._progress["done"] - self._phase_done_base
            left = self._progress["total"] - self._progress["done"]
        else:
            self._progress.pop("eta_seconds", None)
            return
        self._progress["eta_seconds"] = round(max(left, 0) * (now - started) / done, 1)

    def _close_phase(self, now: float) -> None:
        if self._phases and "seconds" not in self._phases[-1]:
            self._phases[-1]["seconds"] = round(now - self._phases[-1]["started_at"], 3)

    def phase_timings(self) -> list[dict[str, Any]]:
        """Each phase the attempt went through with its wall time: ``[{"phase",
        "started_at", "seconds"}]`` (the last one closed now)."""
        with self._lock:
            self._close_phase(time.time())
            return [dict(p) for p in self._phases]

    def flush_progress(self) -> None:
        """Write the latest progress now (the runner calls this when the attempt ends)."""
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            self._last_write = time.monotonic()
            snapshot = dict(self._progress)
        write_json_atomic(self.run_dir.progress, snapshot)
        if self._on_progress is not None:
            self._on_progress(snapshot)
