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
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.atomic import write_json_atomic

if TYPE_CHECKING:
    from distributed import Client

    from shipyard.cluster.dask_session import DaskSession
    from shipyard.cluster.ray_session import RaySession
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
    """

    #: Progress is written at most this often (seconds), except phase changes.
    PROGRESS_INTERVAL = 0.25

    def __init__(self, *, job_id: str, attempt: int, run_dir: Path, spec: JobSpec,
                 dask: DaskSession, ray: RaySession | None = None,
                 on_progress: Callable[[dict], None] | None = None):
        self.job_id = job_id
        self.attempt = attempt
        self.run_dir = Path(run_dir)
        self.spec = spec
        self.logger = logging.getLogger(f"shipyard.job.{spec.name}")
        self.outputs: list[str] = []
        self._dask = dask
        self.ray = ray
        self._on_progress = on_progress
        self._progress: dict[str, Any] = {}
        self._last_write = 0.0
        self._dirty = False

    @property
    def client(self) -> Client:
        """The attempt's Dask client (the cluster starts on first use)."""
        first = not self._dask.started
        client = self._dask.client
        if first:
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
                 total: float | None = None, message: str | None = None, **fields: Any) -> None:
        """Report where the job is; ``shipyard status --json`` shows it under ``progress``.

        Fields merge with what was reported before; a new ``phase`` clears ``done``,
        ``total`` and ``message`` of the old one.

        Parameters
        ----------
        phase : str, optional
            The current phase (``load``, ``train``, ...).
        done, total : number, optional
            How far into the phase (tasks, rows, epochs).
        message : str, optional
            A short note for people.
        **fields
            Anything else JSON-able.
        """
        new_phase = phase is not None and phase != self._progress.get("phase")
        if new_phase:
            for key in ("done", "total", "message"):
                self._progress.pop(key, None)
            self._progress["phase"] = phase
            self._progress["phase_started_at"] = time.time()
        for key, value in (("done", done), ("total", total), ("message", message)):
            if value is not None:
                self._progress[key] = value
        self._progress.update(fields)
        self._progress["attempt"] = self.attempt
        self._progress["updated_at"] = time.time()
        self._dirty = True
        if new_phase or time.monotonic() - self._last_write >= self.PROGRESS_INTERVAL:
            self.flush_progress()

    def flush_progress(self) -> None:
        """Write the latest progress now (the runner calls this when the attempt ends)."""
        if not self._dirty:
            return
        self._dirty = False
        self._last_write = time.monotonic()
        snapshot = dict(self._progress)
        write_json_atomic(self.run_dir / "progress.json", snapshot)
        if self._on_progress is not None:
            self._on_progress(snapshot)
