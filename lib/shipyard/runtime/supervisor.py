"""The supervisor of one job: ``python -m shipyard.runtime.supervisor JOB_ID``.

The local and ``dask`` backends start one, detached (its own session), per job. It
runs each attempt as a child process, ``python -m shipyard.runtime.runner``, in a process
group of its own, and

- moves the job through its states in the store (PENDING -> RUNNING -> ...),
- kills the attempt's whole process tree when it runs past ``spec.timeout``
  (reason ``timeout``) or when the job is cancelled (reason ``cancelled``),
- retries a failed attempt up to ``spec.retries`` times (bad input is not retried:
  the same data would fail the same way),
- reads the runner's outcome file for the reason of a failure.

It imports nothing heavy: Dask and the workload live in the runner.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from shipyard.core.home import Home, attempt_log_path, attempt_outcome_path, read_outcome
from shipyard.core.lifecycle import TIMEOUT_REASON, run_time_left, should_retry, timed_out
from shipyard.core.procs import start_time, terminate_tree
from shipyard.core.runner_cli import runner_command
from shipyard.core.states import FailureKind, JobState
from shipyard.core.store import JobRecord, JobStore
from shipyard.runtime.process_main import job_process_main

__all__ = ["Supervisor", "main"]

log = logging.getLogger("shipyard.supervisor")


def describe_exit(returncode: int) -> str:
    """Why a runner ended, from its exit status alone (when it left no outcome file).

    Examples
    --------
    >>> describe_exit(-9)
    'the attempt was killed by SIGKILL (out of memory?)'
    >>> describe_exit(7)
    'the attempt exited with status 7'
    """
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the attempt was killed by {name}{hint}"
    return f"the attempt exited with status {returncode}"


class Supervisor:
    """Runs the attempts of one job until it ends.

    Parameters
    ----------
    home : Home
    job_id : str
    poll_interval : float
        How often (seconds) to look at the attempt, the clock and the cancel flag.
    """

    #: Seconds between SIGTERM and SIGKILL when ending an attempt.
    KILL_GRACE = 3.0

    def __init__(self, home: Home, job_id: str, poll_interval: float = 0.05):
        self.home = home
        self.store = JobStore(home.db)
        self.job_id = job_id
        self.run_dir = home.run_dir(job_id)
        self.poll_interval = poll_interval
        self.cancel_signalled = threading.Event()

    def install_signal_handlers(self) -> None:
        """SIGTERM (sent by ``shipyard cancel``) cancels the job; SIGHUP is ignored."""
        signal.signal(signal.SIGTERM, lambda *_: self.cancel_signalled.set())
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _cancel_wanted(self, record: JobRecord | None = None) -> bool:
        if self.cancel_signalled.is_set():
            return True
        record = record or self.store.get(self.job_id)
        return record.cancel_requested

    def run(self) -> JobState:
        """Run attempts until the job reaches a terminal state; return that state."""
        while True:
            record = self.store.get(self.job_id)
            if record.state.is_terminal():
                return record.state
            if self._cancel_wanted(record):
                self.store.transition(self.job_id, JobState.CANCELLED, "cancelled")
                continue
            if self.store.transition(self.job_id, JobState.RUNNING,
                                     f"attempt {record.attempt} started") is None:
                continue  # ended meanwhile (cancelled from outside)
            outcome = self._run_attempt(record)
            self._conclude(record, outcome)

    def _runner_command(self, record: JobRecord) -> list[str]:
        code = self.run_dir.side("code")
        return runner_command(sys.executable, run_dir=self.run_dir, job_id=record.id,
                              attempt=record.attempt, store=self.home.db,
                              watch_parent=os.getpid(),
                              dask_address=record.cluster_address or None,
                              code=code["zip"] if code else None)

    def _runner_env(self, record: JobRecord) -> dict[str, str]:
        env = dict(os.environ)
        # the entrypoint's module is found the way `shipyard validate` found it
        paths = [p for p in (record.spec_dir, record.workdir) if p]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env["SHIPYARD_HOME"] = str(self.home.root)
        return env

    def _run_attempt(self, record: JobRecord) -> dict[str, Any]:
        log_path = attempt_log_path(self.run_dir, record.attempt)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        outcome_path = attempt_outcome_path(self.run_dir, record.attempt)
        outcome_path.unlink(missing_ok=True)
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                self._runner_command(record), cwd=record.workdir or None,
                env=self._runner_env(record), stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one
            )
        self.store.update(self.job_id, runner_pid=proc.pid, runner_started=start_time(proc.pid))
        started = time.monotonic()
        next_store_check = 0.0
        while proc.poll() is None:
            now = time.monotonic()
            stop_reason = None
            if self.cancel_signalled.is_set():
                stop_reason = "cancelled"
            elif now >= next_store_check:
                next_store_check = now + 0.5
                if self._cancel_wanted():
                    stop_reason = "cancelled"
            if stop_reason is None and run_time_left(record, started, now) <= 0:
                stop_reason = TIMEOUT_REASON
            if stop_reason:
                log.info("ending attempt %d: %s", record.attempt, stop_reason)
                terminate_tree(proc.pid, proc.pid, grace=self.KILL_GRACE)
                proc.wait()
                if stop_reason == "cancelled":
                    return {"status": "cancelled"}
                return {"status": "failed", "kind": FailureKind.TIMEOUT.value,
                        "reason": TIMEOUT_REASON, "detail": timed_out(record)}
            self.cancel_signalled.wait(self.poll_interval)
        # the runner is gone; make sure nothing it started outlives it
        terminate_tree(None, proc.pid, grace=1.0)
        outcome = read_outcome(self.run_dir, record.attempt)
        if outcome is None:
            return {"status": "failed", "kind": FailureKind.ERROR.value,
                    "reason": describe_exit(proc.returncode)}
        return outcome

    def _conclude(self, record: JobRecord, outcome: dict[str, Any]) -> None:
        status = outcome.get("status")
        if status == "succeeded":
            self.store.transition(self.job_id, JobState.SUCCEEDED, "completed")
            return
        if status in ("cancelled", "terminated"):
            self.store.transition(self.job_id, JobState.CANCELLED, "cancelled")
            return
        kind = FailureKind(outcome.get("kind", FailureKind.ERROR.value))
        reason = outcome.get("reason") or "failed"
        if outcome.get("detail"):
            self.store.note(self.job_id, outcome["detail"], record.attempt)
        if should_retry(kind, attempt=record.attempt, max_attempts=record.max_attempts,
                        cancel_requested=self._cancel_wanted()):
            self.store.transition(self.job_id, JobState.PENDING,
                                  f"attempt {record.attempt} failed: {reason}",
                                  failure_kind=kind, next_attempt=True)
        else:
            self.store.transition(self.job_id, JobState.FAILED, reason, failure_kind=kind)


def _start(home: Home, job_id: str):
    supervisor = Supervisor(home, job_id)
    supervisor.install_signal_handlers()
    return supervisor.run


def main(argv: list[str] | None = None) -> int:
    return job_process_main("shipyard.runtime.supervisor", "supervisor", _start, log, argv)


if __name__ == "__main__":
    sys.exit(main())
