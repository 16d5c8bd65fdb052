"""How a job moves through its states, decided once for every backend.

The local supervisor sees its attempts end; the ``ray`` and ``kubernetes`` backends learn
it from whoever reads the job (nothing of shipyard runs beside those clusters). Either
way the same rules apply, here:

- a transition is made only if the job is still at the attempt it was read at (the
  store's ``if_attempt`` guard): of several readers, the one that moves first owns the
  consequence, such as launching the next attempt;
- an attempt that failed is retried while attempts are left, unless its failure was bad
  input (retrying cannot fix the data) or a cancel was asked for;
- an attempt seen finished before anyone saw it run is moved to RUNNING first, so the
  events read PENDING, RUNNING, then the end;
- a launch made from a read that fails ends the job with the reason, and one that a
  cancel overtook is taken back;
- a job whose supervisor, driver or cluster-side job is gone without saying how it
  ended is FAILED as ``lost``.

Examples
--------
>>> from shipyard.core.states import FailureKind
>>> should_retry(FailureKind.ERROR, attempt=1, max_attempts=2, cancel_requested=False)
True
>>> should_retry(FailureKind.INPUT, attempt=1, max_attempts=3, cancel_requested=False)
False
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from shipyard.core.errors import InvalidTransitionError
from shipyard.core.procs import is_alive
from shipyard.core.states import FailureKind, JobState
from shipyard.core.store import JobRecord, JobStore

__all__ = ["Lifecycle", "should_retry", "run_time_left", "timed_out", "TIMEOUT_REASON",
           "ask_supervisor_to_cancel"]

#: The reason of an attempt that ran past ``spec.timeout`` (the event's note says more).
TIMEOUT_REASON = "timeout"


def should_retry(kind: FailureKind, *, attempt: int, max_attempts: int,
                 cancel_requested: bool) -> bool:
    """Whether a failed attempt gets another one."""
    return kind is not FailureKind.INPUT and attempt < max_attempts and not cancel_requested


def run_time_left(record: JobRecord, started_at: float, now: float) -> float:
    """Seconds until an attempt that started at ``started_at`` has run ``spec.timeout``
    (inf without one). Every backend's clock for the timeout: from the attempt's start,
    not its submission or its cluster's provisioning."""
    return record.timeout_s - (now - started_at) if record.timeout_s else math.inf


def timed_out(record: JobRecord) -> str:
    """What the event of a timed-out attempt says."""
    return f"attempt {record.attempt} ran past {record.timeout_s:g}s"


class Lifecycle:
    """The transitions of the jobs in one store, as the rules above make them.

    Parameters
    ----------
    store : JobStore
    """

    def __init__(self, store: JobStore):
        self.store = store

    def move(self, record: JobRecord, to: JobState, reason: str | None,
             **kwargs: Any) -> JobRecord | None:
        """The transition, if this process made it (None if another one moved first)."""
        try:
            return self.store.transition(record.id, to, reason, if_attempt=record.attempt,
                                         **kwargs)
        except InvalidTransitionError:
            return None

    def started(self, record: JobRecord) -> JobRecord | None:
        """The record as RUNNING (moving it there if its attempt ran before anyone saw
        it), or None if another process has moved the job on meanwhile."""
        if record.state is JobState.RUNNING:
            return record
        return self.move(record, JobState.RUNNING, f"attempt {record.attempt} started")

    def attempt_failed(self, record: JobRecord, kind: FailureKind, reason: str, *,
                       retries: bool = True) -> JobRecord | None:
        """End a failed attempt: the job at its next attempt (PENDING: the caller
        launches it) if it gets one, else FAILED (and None). None too where another
        process dealt with this attempt. ``retries=False`` for a resource that retries
        itself (a batch/v1 Job)."""
        running = self.started(record)
        if running is None:
            return None
        if retries and should_retry(kind, attempt=running.attempt,
                                    max_attempts=running.max_attempts,
                                    cancel_requested=running.cancel_requested):
            return self.move(running, JobState.PENDING,
                             f"attempt {running.attempt} failed: {reason}",
                             failure_kind=kind, next_attempt=True)
        self.move(running, JobState.FAILED, reason, failure_kind=kind)
        return None

    def launch_or_fail(self, record: JobRecord, launch: Callable[[JobRecord], None],
                       take_back: Callable[[JobRecord], None], failed: str) -> None:
        """Launch an attempt from a read: a launch that fails ends the job with
        ``failed: <the error's first line>`` (not an error out of ``status``), and one that
        a cancel overtook is taken back."""
        try:
            launch(record)
        except Exception as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            self.move(record, JobState.FAILED, f"{failed}: {first}",
                      failure_kind=FailureKind.CLUSTER)
            return
        now = self.store.get(record.id)
        if now.cancel_requested or now.state.is_terminal():
            take_back(record)

    def lost(self, record: JobRecord, reason: str) -> JobRecord:
        """The job FAILED as lost: what ran it is gone (its supervisor or pipeline driver,
        its Ray job, its Kubernetes resource) and left no account of how it ended.
        Returns the job's record as it is now."""
        return (self.move(record, JobState.FAILED, reason, failure_kind=FailureKind.LOST)
                or self.store.get(record.id))

    def copy_progress(self, record: JobRecord, progress: dict[str, Any] | None) -> None:
        """Keep the progress the attempt reported (read from wherever it writes it)."""
        if progress is not None and progress != record.progress:
            self.store.set_progress(record.id, progress)


def ask_supervisor_to_cancel(store: JobStore, record: JobRecord, wait: float) -> bool:
    """Flag the job for cancellation and SIGTERM its supervisor (or pipeline driver);
    return whether the job ended within ``wait`` seconds. False also when the supervisor
    is gone: the caller then stops what it left running."""
    store.request_cancel(record.id)
    alive = is_alive(record.supervisor_pid, record.supervisor_started)
    if alive:
        try:
            os.kill(record.supervisor_pid, signal.SIGTERM)
        except ProcessLookupError:
            alive = False
    deadline = time.monotonic() + wait
    while alive and time.monotonic() < deadline:
        if store.get(record.id).state.is_terminal():
            return True
        time.sleep(0.05)
        # a process signalled before it set its handler (just started) dies of it
        alive = is_alive(record.supervisor_pid, record.supervisor_started)
    return store.get(record.id).state.is_terminal()
