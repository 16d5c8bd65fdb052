"""The ``local`` backend: jobs run on this machine, one detached supervisor each.

``submit`` starts ``python -m shipyard.runtime.supervisor JOB_ID`` in a session of its
own (it outlives the CLI that started it); the supervisor runs each attempt as a child
process with a Dask ``LocalCluster`` sized from ``spec.resources``.

``shipyard cluster up local`` starts one long-lived LocalCluster instead
(``python -m shipyard.backends.local_daemon``), sized by the profile's ``resources``;
while it is up, local jobs compute on it rather than starting their own, which saves
the cluster start per attempt. ``up`` waits for that process to report on a pipe that
the cluster is up or why it is not; a process that dies closes the pipe, so ``up``
learns of it at once, whatever killed it.

A job whose supervisor died (killed, machine rebooted) is marked FAILED with reason
``supervisor lost`` the next time anything reads it, and whatever its attempt left
running is ended: no job stays RUNNING forever.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shipyard.backends.base import Backend
from shipyard.core.errors import ClusterError, UsageError
from shipyard.core.lifecycle import ask_supervisor_to_cancel
from shipyard.core.procs import is_alive, reap_in_background, start_time, terminate_tree
from shipyard.core.states import JobState
from shipyard.core.store import JobRecord

__all__ = ["LocalBackend"]

#: A PENDING job whose supervisor pid is still unrecorded after this long is lost.
_START_GRACE = 30.0


def _read_report(fd: int, wait: float) -> dict[str, Any] | None:
    """The cluster process's report line from the pipe ``fd``: ``{"ok": ...}``, ``{}``
    if the pipe closed without one (the process died), None if ``wait`` ran out."""
    deadline = time.monotonic() + wait
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if selector.select(remaining):
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
    try:
        report = json.loads(data.split(b"\n", 1)[0] or b"{}")
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


class LocalBackend(Backend):
    """Jobs on this machine, each under a detached supervisor process."""

    name = "local"

    # -- submitting --------------------------------------------------------------------

    def _scheduler_address(self) -> str | None:
        state = self._daemon_state()
        return state["address"] if state else None

    def _ships_code(self, cluster_address: str | None) -> bool:
        # workers this job does not start (`cluster up`'s, a tcp:// scheduler's) do not
        # import from the spec's directory
        return cluster_address is not None

    def _launch(self, record: JobRecord) -> None:
        log_path = self.home.run_dir(record.id) / "logs" / "supervisor.log"
        env = dict(os.environ, SHIPYARD_HOME=str(self.home.root), PYTHONUNBUFFERED="1")
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "shipyard.runtime.supervisor", record.id],
                cwd=record.workdir or None, env=env, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,  # detached: Ctrl-C in this terminal does not reach it
                close_fds=True,
            )
        reap_in_background(proc)
        self.store.update(record.id, supervisor_pid=proc.pid,
                          supervisor_started=start_time(proc.pid))
        if record.cluster_address:
            self.store.note(record.id, f"computing on the running local cluster "
                                       f"{record.cluster_address}")

    # -- watching ----------------------------------------------------------------------

    def _refresh(self, record: JobRecord) -> JobRecord:
        if record.supervisor_pid is None:
            if time.time() - record.created_at < _START_GRACE:
                return record  # being submitted right now
        elif is_alive(record.supervisor_pid, record.supervisor_started):
            return record
        # The supervisor is gone but the job is not terminal. Re-read: it may have
        # ended the job just before exiting.
        record = self.store.get(record.id)
        if record.state.is_terminal():
            return record
        self._end_attempt(record)
        return self.lifecycle.lost(record, "supervisor lost")

    def _end_attempt(self, record: JobRecord) -> None:
        if record.runner_pid and is_alive(record.runner_pid, record.runner_started):
            terminate_tree(record.runner_pid, record.runner_pid, grace=2.0)

    # -- cancelling --------------------------------------------------------------------

    def _cancel(self, record: JobRecord, timeout: float) -> None:
        if ask_supervisor_to_cancel(self.store, record, timeout):
            return
        # The supervisor did not answer in time (or is gone): end the attempt ourselves.
        self._end_attempt(self.store.get(record.id))
        self.store.transition(record.id, JobState.CANCELLED, "cancelled")

    # -- `shipyard cluster up|down|status local` ---------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.home.clusters / f"{self.profile.name}.state.json"

    def _daemon_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return None
        if not is_alive(state.get("pid"), state.get("started")):
            self._state_path.unlink(missing_ok=True)  # left behind by a killed daemon
            return None
        return state

    def _describe(self) -> dict[str, Any]:
        state = self._daemon_state()
        info: dict[str, Any] = {"name": self.profile.name, "backend": self.name,
                                "up": state is not None}
        if state:
            info.update({k: state[k] for k in ("address", "dashboard", "workers",
                                                "threads_per_worker", "memory_per_worker",
                                                "pid")})
        return info

    def _up(self, wait: float = 60.0) -> dict[str, Any]:
        if self._daemon_state():
            return self._describe()
        from shipyard.backends.local_settings import local_settings

        resources = local_settings(self.profile.source or self.profile.name,
                                   self.profile.settings).resources
        self.home.clusters.mkdir(parents=True, exist_ok=True)
        log_path = self.home.clusters / f"{self.profile.name}.log"
        # the daemon reports on this pipe once it is up or has failed; its end of the
        # pipe closes when it dies, so a death is seen at once, not after `wait`
        read_fd, write_fd = os.pipe()
        try:
            command = [sys.executable, "-m", "shipyard.backends.local_daemon",
                       "--state", str(self._state_path),
                       "--resources", resources.model_dump_json(),
                       "--ready-fd", str(write_fd)]
            with open(log_path, "ab") as log_file:
                proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        close_fds=True, pass_fds=(write_fd,))
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        try:
            report = _read_report(read_fd, wait)
        except BaseException:  # Ctrl-C while it starts: leave no half-started cluster
            terminate_tree(proc.pid, proc.pid, grace=2.0)
            raise
        finally:
            os.close(read_fd)
        if report is not None and report.get("ok") and self._daemon_state():
            reap_in_background(proc)
            return self._describe()
        raise self._start_failure(proc, report, wait, log_path)

    def _start_failure(self, proc: subprocess.Popen, report: dict[str, Any] | None,
                       wait: float, log_path: Path) -> ClusterError | UsageError:
        """The error for a cluster process that did not come up, which is ended."""
        what = f"the local cluster {self.profile.name!r}"
        if report is not None:  # it reported a failure, or its pipe closed: it is ending
            try:
                proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                pass
        # and whatever its session still holds (the Dask workers of a killed process)
        terminate_tree(proc.pid, proc.pid, grace=2.0)
        code = proc.wait()
        if report is None:
            return ClusterError(f"{what} did not start within {wait:g} s and was stopped; "
                                f"its log is {log_path}")
        if report.get("message"):
            message = (f"{what} could not start: {report['message']} (the cluster process "
                       f"exited with code {code}; its log is {log_path})")
            if report.get("exit_code") == UsageError.exit_code:
                source = self.profile.source or "its profile"
                return UsageError(f"{message}; fix {source}")
            return ClusterError(message)
        how = f"exited with code {code}"
        if code < 0:
            how = f"was killed by signal {-code} ({signal.strsignal(-code)})"
        return ClusterError(f"{what} could not start: its process (pid {proc.pid}) {how} "
                            f"before it was up; its log is {log_path}")

    def _down(self) -> dict[str, Any]:
        state = self._daemon_state()
        if state:
            terminate_tree(state["pid"], state["pid"], grace=10.0)
            self._state_path.unlink(missing_ok=True)
        return self._describe()
