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

Where shipyard reads the job from a cluster (``ray``, ``kubernetes``), the backend
turns what it read into one :class:`Observation` and :meth:`Lifecycle.apply` makes the
transitions: the runner's own account of a failure, retries, the per-attempt timeout
where the cluster does not enforce it, the start timeout of an attempt that cannot
start, a vanished attempt. The backend only carries out what it is told, through
:class:`AttemptHooks`.

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
from dataclasses import dataclass
import os
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from shipyard.core.errors import InvalidTransitionError
from shipyard.core.procs import is_alive
from shipyard.core.states import FailureKind, JobState
from shipyard.core.store import JobRecord, JobStore

__all__ = ["Lifecycle", "Observation", "AttemptHooks", "should_retry", "run_time_left",
           "timed_out", "TIMEOUT_REASON", "ask_supervisor_to_cancel"]

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


@dataclass(frozen=True)
class Observation:
    """What a backend read of a job's current attempt where it runs, in shipyard's terms.

    Attributes
    ----------
    state : JobState or None
        The attempt's state there; None where the cluster does not know the attempt
        (not created yet, or gone).
    reason : str or None
        What the job should say: why it is pending, how it failed; for a vanished
        attempt, what is gone.
    failure_kind : FailureKind or None
        Of a FAILED attempt, as the cluster saw it (the runner's own account, where it
        left one, says more: see :meth:`Lifecycle.apply`).
    failed_attempts : int
        Failures the resource counted itself, where it ``retries_itself``.
    retries_itself : bool
        The resource runs its next attempt itself (a batch/v1 Job): the store follows its
        count instead of launching one.
    stuck : bool
        Pending and unable to start (an image that cannot be pulled, no node that fits):
        the start timeout applies.
    running_since : float or None
        Where the reader enforces ``spec.timeout`` (the cluster does not): when the
        attempt began running, epoch seconds; ``math.nan`` for "when it was first seen
        running". None where the cluster enforces it.
    """

    state: JobState | None
    reason: str | None = None
    failure_kind: FailureKind | None = None
    failed_attempts: int = 0
    retries_itself: bool = False
    stuck: bool = False
    running_since: float | None = None


class AttemptHooks(Protocol):
    """What a backend does when :meth:`Lifecycle.apply` decides."""

    def launch_attempt(self, record: JobRecord) -> None:
        """Start the record's attempt (the next one, or one nobody started)."""

    def stop_attempt(self, record: JobRecord) -> None:
        """Stop what the record's attempt runs (it timed out, or could not start)."""

    def collect_attempt(self, record: JobRecord) -> None:
        """Bring an ended attempt's results and logs home (where they are elsewhere)."""

    def release_attempt(self, record: JobRecord) -> None:
        """Clean up after an attempt seen ended (what the cluster keeps otherwise)."""

    def attempt_outcome(self, record: JobRecord) -> dict[str, Any] | None:
        """The runner's own account of the attempt (``status``, ``kind``, ``reason``)."""


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

    def since_last_move(self, record: JobRecord) -> float:
        """When the job last changed state (its current attempt began waiting or
        running), epoch seconds."""
        moves = [e.ts for e in self.store.events(record.id) if e.state is not None]
        return moves[-1] if moves else record.created_at

    def apply(self, record: JobRecord, seen: Observation, hooks: AttemptHooks, *,
              start_timeout: float | None = None, launch_grace: float = 60.0) -> JobRecord:
        """Move the job as ``seen`` says and return it as it is now.

        Parameters
        ----------
        record : JobRecord
            The job as it was read (not terminal).
        seen : Observation
            Its current attempt, as the backend read it.
        hooks : AttemptHooks
            The backend's hands.
        start_timeout : float, optional
            Seconds a stuck attempt may stay pending before the job fails (``cluster``).
        launch_grace : float
            Seconds an attempt the cluster does not know may stay unlaunched (another
            reader is launching it, or died doing so) before this one launches it.
        """
        if seen.state is None:
            self._vanished(record, seen, hooks, launch_grace)
            return self.store.get(record.id)
        if seen.retries_itself:
            # each failure the resource retried moves the store on one attempt (one that
            # failed for good has as many failures as attempts: the last one ended it)
            retried = seen.failed_attempts - (1 if seen.state is JobState.FAILED else 0)
            while (retried >= record.attempt and record.attempt < record.max_attempts
                   and not record.state.is_terminal()):
                running = self.started(record)
                moved = running and self.move(
                    running, JobState.PENDING, f"attempt {running.attempt} failed in the cluster",
                    next_attempt=True, failure_kind=FailureKind.ERROR)
                if not moved:
                    return self.store.get(record.id)
                record = moved
        if seen.state is JobState.RUNNING:
            running = self.started(record)
            if running is not None:
                self._running(running, seen, hooks)
        elif seen.state is JobState.PENDING:
            self._pending(record, seen, hooks, start_timeout)
        elif seen.state is JobState.SUCCEEDED:
            self._ended(record, hooks)
            running = self.started(record)
            if running is not None:
                self.move(running, JobState.SUCCEEDED, "completed")
        elif seen.state is JobState.CANCELLED:
            self._ended(record, hooks)
            self.move(record, JobState.CANCELLED, seen.reason or "cancelled")
        elif seen.state is JobState.FAILED:
            self._ended(record, hooks)
            self._attempt_ended(record, seen.failure_kind or FailureKind.ERROR,
                                seen.reason or "failed", hooks,
                                retries_itself=seen.retries_itself)
        return self.store.get(record.id)

    def _running(self, running: JobRecord, seen: Observation, hooks: AttemptHooks) -> None:
        """An attempt seen running: ended as timed out where the reader enforces
        ``spec.timeout`` and it ran past it, else its reason shown."""
        if seen.running_since is not None:
            since = (self.since_last_move(running) if math.isnan(seen.running_since)
                     else seen.running_since)
            if run_time_left(running, since, time.time()) < 0:
                self._ended(running, hooks)
                self.store.note(running.id, timed_out(running), running.attempt)
                self._attempt_ended(running, FailureKind.TIMEOUT, TIMEOUT_REASON, hooks,
                                    retries_itself=False, stop=True)
                return
        if seen.reason:
            self.store.set_reason(running.id, seen.reason, if_state=JobState.RUNNING,
                                  if_attempt=running.attempt)

    @staticmethod
    def _ended(record: JobRecord, hooks: AttemptHooks) -> None:
        # before the transition: once the job is terminal, nobody reads it again
        hooks.collect_attempt(record)
        hooks.release_attempt(record)

    def _pending(self, record: JobRecord, seen: Observation, hooks: AttemptHooks,
                 start_timeout: float | None) -> None:
        if record.state is JobState.RUNNING:
            return  # a retry the store has not caught up with yet; nothing to say
        if seen.reason:
            self.store.set_reason(record.id, seen.reason, if_state=JobState.PENDING,
                                  if_attempt=record.attempt)
        if (seen.stuck and start_timeout is not None
                and time.time() - self.since_last_move(record) > start_timeout):
            reason = (f"{seen.reason} (nothing started within {start_timeout:g}s, "
                      "the profile's start_timeout)")
            if self.move(record, JobState.FAILED, reason, failure_kind=FailureKind.CLUSTER):
                hooks.stop_attempt(record)

    def _attempt_ended(self, record: JobRecord, kind: FailureKind, reason: str,
                       hooks: AttemptHooks, *, retries_itself: bool, stop: bool = False) -> None:
        """A failed attempt: recorded first (so no other reader maps what stopping it
        shows to CANCELLED), then stopped if asked, then the next one launched."""
        outcome = hooks.attempt_outcome(record)
        if (outcome and outcome.get("status") == "failed"
                and kind in (FailureKind.ERROR, FailureKind.INPUT, FailureKind.CLUSTER)):
            # the runner's own account (the exception's summary, the bad input) says more
            # than an exit code; an OOM kill or a deadline leaves none, and is the cluster's
            kind = FailureKind(outcome.get("kind", "error"))
            reason = outcome.get("reason") or reason
        retried = self.attempt_failed(record, kind, reason, retries=not retries_itself)
        if stop:
            hooks.stop_attempt(record)
        if retried is not None:
            self.launch_or_fail(retried, hooks.launch_attempt, hooks.stop_attempt,
                                f"could not start attempt {retried.attempt}")

    def _vanished(self, record: JobRecord, seen: Observation, hooks: AttemptHooks,
                  launch_grace: float) -> None:
        """The cluster does not know the attempt: ended and cleaned up before anyone
        looked (its results say how), not launched yet, or gone."""
        hooks.collect_attempt(record)
        outcome = hooks.attempt_outcome(record)
        if outcome is not None:
            running = self.started(record)
            if running is None:
                return
            if outcome.get("status") == "succeeded":
                self.move(running, JobState.SUCCEEDED, "completed")
            else:
                self.move(running, JobState.FAILED, outcome.get("reason") or "failed",
                          failure_kind=FailureKind(outcome.get("kind", "error")))
            return
        if record.state is JobState.PENDING:
            # another reader (or the submitter) is launching it, or died doing so: past
            # the grace, launch it here (launching an attempt is idempotent)
            if time.time() - self.since_last_move(record) > launch_grace:
                self.launch_or_fail(record, hooks.launch_attempt, hooks.stop_attempt,
                                    f"could not start attempt {record.attempt}")
            return
        self.lost(record, seen.reason or "its attempt is gone from the cluster")

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
