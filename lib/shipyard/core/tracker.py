"""Reading, following and stopping the jobs that one kind of runner carries.

A :class:`Tracker` is what the job API holds for a record: every backend is one
(:class:`~shipyard.backends.base.Backend` adds submitting and cluster management), and so
is the pipelines' (a pipeline is carried by its driver, not run by a backend). The
public methods are fixed and apply the rules every job shares (a terminal record is as
it is; logs come attempt after attempt); subclasses fill the ``_``-prefixed hooks.

Hooks
-----
_refresh(record)
    Reconcile the record with reality (a lost process, a finished pod) and return it.
_cancel(record, timeout)
    Stop the job; when it returns the job must be terminal.
_read_log(job_id, attempt, offset)
    The bytes of an attempt's log from ``offset`` on (default: the attempt's log file).
_await_change(record, poll, limit)
    Block until the job may have changed, at most ``limit`` seconds (default: sleep
    ``poll``); a tracker that can watch (Kubernetes) waits on the watch instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import ClassVar

from shipyard.core.home import Home, attempt_log_path
from shipyard.core.lifecycle import Lifecycle
from shipyard.core.store import JobRecord, JobStore

__all__ = ["Tracker"]


def _read_from(path: os.PathLike, offset: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""


class Tracker:
    """Base class of what carries jobs (see the module docstring for the hooks).

    Parameters
    ----------
    home : Home
        ``SHIPYARD_HOME``: the job store and run directories.
    store : JobStore
    """

    #: How often ``logs --follow`` reads a running attempt's log again.
    LOG_POLL_SECONDS: ClassVar[float] = 0.2

    def __init__(self, home: Home, store: JobStore):
        self.home = home
        self.store = store
        #: the job's transitions, as every backend makes them (retries, attempt guards)
        self.lifecycle = Lifecycle(store)

    # -- public API (fixed) ------------------------------------------------------------

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
        where they are kept elsewhere (default: they are there already)."""
        return None

    # -- hooks (subclasses fill these) -------------------------------------------------

    def _refresh(self, record: JobRecord) -> JobRecord:
        return record

    def _cancel(self, record: JobRecord, timeout: float) -> None:
        raise NotImplementedError

    def _await_change(self, record: JobRecord, poll: float, limit: float) -> None:
        time.sleep(poll)

    def _read_log(self, job_id: str, attempt: int, offset: int) -> bytes:
        return _read_from(attempt_log_path(self.home.run_dir(job_id), attempt), offset)
