"""The backend contract: what every place that runs jobs must provide.

A backend is one module with one subclass of :class:`Backend`. The public methods are
fixed and do the bookkeeping every backend shares (the job store record, the run
directory, the spec file, the terminal-state rules); subclasses fill the ``_``-prefixed
hooks with what differs (how a job is started, watched, stopped).

Hooks
-----
_check_reachable()
    Raise :class:`~shipyard.core.errors.ClusterError` if the cluster cannot be reached.
    Called before anything is written, so an unreachable cluster leaves no job behind.
_scheduler_address()
    The Dask scheduler the runner should use, or None to start a LocalCluster.
_launch(record)
    Start the job; return quickly. The spec is already in ``<run dir>/spec.yaml``.
_refresh(record)
    Reconcile the record with reality (a lost process, a finished pod) and return it.
_cancel(record, timeout)
    Stop the job; when it returns the job must be terminal.
_read_log(job_id, attempt, offset)
    The bytes of an attempt's log from ``offset`` on (default: the attempt's log file).
_await_change(record, poll, limit)
    Block until the job may have changed, at most ``limit`` seconds (default: sleep
    ``poll``); a backend that can watch (Kubernetes) waits on the watch instead.
_up(), _down(), _describe()
    Start, stop and describe a cluster this backend manages (``shipyard cluster ...``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from shipyard.core.atomic import write_text_atomic
from shipyard.core.errors import ClusterError, UsageError
from shipyard.core.home import attempt_log_path
from shipyard.core.ids import new_job_id
from shipyard.core.lifecycle import Lifecycle
from shipyard.core.states import FailureKind, JobState

if TYPE_CHECKING:
    from shipyard.cluster.profiles import ClusterProfile
    from shipyard.core.home import Home
    from shipyard.core.store import JobRecord, JobStore
    from shipyard.spec import JobSpec

__all__ = ["Backend", "ExistingCluster"]


def _read_from(path: os.PathLike, offset: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""


class Backend:
    """Base class of the backends (see the module docstring for the hooks).

    Parameters
    ----------
    profile : ClusterProfile
        The resolved ``--cluster``.
    home : Home
        ``SHIPYARD_HOME``: the job store and run directories.
    store : JobStore
    """

    #: The backend's registry name.
    name: ClassVar[str] = ""
    #: How often ``logs --follow`` reads a running attempt's log again.
    LOG_POLL_SECONDS: ClassVar[float] = 0.2

    def __init__(self, profile: ClusterProfile, home: Home, store: JobStore):
        self.profile = profile
        self.home = home
        self.store = store
        #: the job's transitions, as every backend makes them (retries, attempt guards)
        self.lifecycle = Lifecycle(store)

    # -- public API (fixed) ------------------------------------------------------------

    def submit(self, spec: JobSpec, *, cluster_address: str | None = None) -> JobRecord:
        """Record the job as PENDING, write its spec to the run directory, start it.

        ``cluster_address`` names the Dask scheduler to compute on where the backend
        would otherwise choose (a pipeline's stages share one cluster).
        """
        self._check_reachable()
        record = self.store.create(
            lambda: new_job_id(spec.name),
            name=spec.name,
            cluster=self.profile.name,
            backend=self.profile.backend,
            max_attempts=spec.spec.retries + 1,
            timeout_s=spec.spec.timeout,
            cluster_address=cluster_address or self._scheduler_address(),
            workdir=os.getcwd(),
            spec_dir=spec.base_dir,
            labels=dict(spec.metadata.labels),
        )
        run_dir = self.home.run_dir(record.id)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir.spec, spec.to_yaml())
        try:
            self._launch(record)
        except Exception as err:
            reason = f"could not start the job: {err}"
            self.store.transition(record.id, JobState.FAILED, reason,
                                  failure_kind=FailureKind.CLUSTER)
            raise ClusterError(f"{self.profile.name}: {reason}") from err
        return self.store.get(record.id)

    def refresh(self, record: JobRecord) -> JobRecord:
        """The record, reconciled with what is really running (terminal ones as they are)."""
        if record.state.is_terminal():
            return record
        return self._refresh(record)

    def cancel(self, record: JobRecord, timeout: float = 5.0) -> JobRecord:
        """Stop the job; a job that already ended is left as it is."""
        record = self.refresh(record)
        if not record.state.is_terminal():
            self._cancel(record, timeout)
        return self.store.get(record.id)

    def logs(self, job_id: str, follow: bool = False,
             poll: float | None = None) -> Iterator[str]:
        """The job's log lines, attempt after attempt; with ``follow``, until it ends
        (reading again every ``poll`` seconds, default :attr:`LOG_POLL_SECONDS`).

        Each attempt after the first starts with a ``--- attempt N ---`` line.
        """
        poll = self.LOG_POLL_SECONDS if poll is None else poll
        attempt = 1
        while True:
            if attempt > 1:
                yield f"--- attempt {attempt} ---"
            offset, partial = 0, ""
            while True:
                record = self.refresh(self.store.get(job_id))
                attempt_over = attempt < record.attempt or record.state.is_terminal()
                # read after looking at the state: once the attempt is over, this read
                # sees everything it wrote
                data = self._read_log(job_id, attempt, offset)
                offset += len(data)
                lines = (partial + data.decode("utf-8", errors="replace")).split("\n")
                partial = lines.pop()
                yield from lines
                if attempt_over or not follow:
                    break
                if not data:
                    time.sleep(poll)
            if partial:
                yield partial
            if attempt >= record.attempt:
                return
            attempt += 1

    def await_change(self, record: JobRecord, poll: float, limit: float | None = None) -> None:
        """Wait until the job may have changed: ``poll`` seconds, or as long as a watch
        sees nothing happen, never more than ``limit`` (``wait`` calls this between reads)."""
        self._await_change(record, poll if limit is None else min(poll, limit),
                           10.0 if limit is None else limit)

    def fetch_results(self, record: JobRecord) -> None:
        """Bring a finished job's ``result.json`` and artifacts into its run directory,
        where a backend keeps them elsewhere (default: they are there already)."""
        return None

    def up(self) -> dict[str, Any]:
        """Start the cluster this profile describes; return its description."""
        return self._up()

    def down(self) -> dict[str, Any]:
        """Stop the cluster this profile describes; return its description."""
        return self._down()

    def describe(self) -> dict[str, Any]:
        """Whether the cluster is up, its address and dashboard."""
        return self._describe()

    # -- hooks (subclasses fill these) -------------------------------------------------

    def _check_reachable(self) -> None:
        return None

    def _scheduler_address(self) -> str | None:
        return None

    def _launch(self, record: JobRecord) -> None:
        raise NotImplementedError

    def _refresh(self, record: JobRecord) -> JobRecord:
        return record

    def _cancel(self, record: JobRecord, timeout: float) -> None:
        raise NotImplementedError

    def _await_change(self, record: JobRecord, poll: float, limit: float) -> None:
        time.sleep(poll)

    def _read_log(self, job_id: str, attempt: int, offset: int) -> bytes:
        return _read_from(attempt_log_path(self.home.run_dir(job_id), attempt), offset)

    def _up(self) -> dict[str, Any]:
        raise UsageError(f"cluster {self.profile.name!r} ({self.name}) is not started by shipyard")

    def _down(self) -> dict[str, Any]:
        raise UsageError(f"cluster {self.profile.name!r} ({self.name}) is not stopped by shipyard")

    def _describe(self) -> dict[str, Any]:
        return {"name": self.profile.name, "backend": self.name, "address": self.profile.address}


class ExistingCluster:
    """Mixin for backends that use a cluster someone else runs (a Dask scheduler, a Ray
    head): ``shipyard cluster up/down`` refuses, ``cluster status`` says if it answers.

    The backend sets :attr:`cluster_kind` and :attr:`how_to_start`, and its
    ``_check_reachable`` is the liveness check.
    """

    #: What the cluster is, for messages: "an existing Dask scheduler".
    cluster_kind: ClassVar[str] = "an existing cluster"
    #: How its owner starts and stops it, for messages.
    how_to_start: ClassVar[str] = ""

    def _up(self) -> dict[str, Any]:
        hint = f" ({self.how_to_start})" if self.how_to_start else ""
        raise UsageError(f"cluster {self.profile.name!r} is {self.cluster_kind} "
                         f"({self.profile.address}); shipyard uses it but does not "
                         f"start or stop it{hint}")

    _down = _up

    def _describe(self) -> dict[str, Any]:
        try:
            self._check_reachable()
            up = True
        except ClusterError:
            up = False
        return {"name": self.profile.name, "backend": self.name,
                "address": self.profile.address, "up": up}
