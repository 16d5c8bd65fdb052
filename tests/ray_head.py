"""A Ray head for a test module (`ray start --head` on loopback), shared by its tests:
``ray.init`` and a head's start take seconds."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import wait_until
from shipyard.core.procs import terminate_tree

__all__ = ["ray_head", "RayHead", "free_port"]


def free_port() -> int:
    """A loopback port nothing listens on now (another process may take it later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_ray_head(temp: str) -> tuple[subprocess.Popen, str]:
    """``ray start --head`` with 2 CPUs, its dashboard (the Jobs API) on loopback."""
    dashboard = free_port()
    env = dict(os.environ)
    # the jobs' entrypoint runs `python` from the head's PATH: this environment's
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # on SIGTERM the head first drains its node, waiting up to 30 s for actors still there
    # (Ray Train leaves a detached one) to go: there is nothing to drain for
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
         "--port=0", "--num-cpus=2", "--include-dashboard=true",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         # The job agent's port is bound by the agent itself (0: any free one). Its fixed
         # default may be held by another head, and a port picked here and bound seconds
         # later may be taken meanwhile by the other test worker's connections: an agent
         # that cannot bind stays up without its HTTP server, and every submission is
         # answered "No available agent" (CI saw this).
         "--dashboard-agent-listen-port=0",
         "--disable-usage-stats", f"--temp-dir={temp}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    return proc, f"http://127.0.0.1:{dashboard}"


def _stop_ray_head(proc: subprocess.Popen) -> None:
    # `ray start --block` stops its processes in order on SIGTERM (about 2 s); the same
    # signal sent to all of them at once leaves the `ray` process draining a node whose
    # GCS is gone until the drain grace _start_ray_head sets runs out. What outlives it
    # gets that.
    proc.terminate()
    try:
        proc.wait(timeout=20)  # not a deadline: what outlives it is killed below
    except subprocess.TimeoutExpired:
        pass
    terminate_tree(proc.pid, proc.pid, grace=10.0)


def _runs_jobs(address: str):
    """The Jobs API client once the head accepts and runs a job (its job agent is up),
    else None."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    from shipyard.backends.ray_jobs import _use_ray_auth_token

    _use_ray_auth_token()
    try:
        client = JobSubmissionClient(address)
        probe = client.submit_job(entrypoint="true")
    except Exception:  # not up yet, or no job agent yet
        return None
    wait_until(lambda: client.get_job_status(probe) in
               (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED),
               timeout=60, interval=0.25, what="the Ray head's probe job")
    return client


class RayHead(tuple):
    """``(dashboard address, Jobs API client)``, with the head's GCS address as ``gcs``
    (what ``RAY_ADDRESS`` takes for a driver that joins it)."""

    gcs: str


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head for the module: its dashboard address and a Jobs API client
    (:class:`RayHead`).

    A head that does not run a job within 90 s (a port taken between choosing and
    binding it) is replaced, twice at most. Its temporary directory is short: Ray's
    socket paths must fit in 107 characters.
    """
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    proc = None
    try:
        for attempt in range(3):
            proc, address = _start_ray_head(temp)
            try:
                client = wait_until(lambda: _runs_jobs(address), timeout=90, interval=0.5,
                                    what=f"the Ray head at {address} to run a job")
                break
            except AssertionError:
                _stop_ray_head(proc)
                proc = None
                if attempt == 2:
                    raise
        head = RayHead((address, client))
        # `ray start` writes the GCS address it bound into its temporary directory
        head.gcs = (Path(temp) / "ray_current_cluster").read_text().strip()
        yield head
    finally:
        if proc is not None:
            _stop_ray_head(proc)
        shutil.rmtree(temp, ignore_errors=True)

