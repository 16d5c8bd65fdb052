"""A long-lived local Dask cluster: ``python -m shipyard.backends.local_daemon``.

Started by ``shipyard cluster up local``, stopped by ``shipyard cluster down local``
(SIGTERM). While it runs, its state file (scheduler address, dashboard, pid) tells
local jobs to compute on it instead of starting a LocalCluster per attempt.

``--ready-fd`` is the write end of a pipe from the process that started it: once the
cluster is up (its state file written) one JSON line ``{"ok": true}`` goes there, or,
when it cannot start, ``{"ok": false, "exit_code": 2|3, "message": "..."}`` (the
traceback goes to the log only). Either way the pipe is closed then, so the starter
also learns at once of a death that left no word (end of file).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import IO, Any

from shipyard.core.atomic import write_json_atomic
from shipyard.core.procs import start_time

log = logging.getLogger("shipyard.local_cluster")

#: Exit codes, as the CLI's (DESIGN.md): a bad profile, a cluster that could not start.
BAD_PROFILE, NOT_STARTED = 2, 3


def _tell(ready: IO[str] | None, report: dict[str, Any]) -> None:
    """Write the one report line to the starter and close the pipe."""
    if ready is None:
        return
    try:
        with ready:
            ready.write(json.dumps(report) + "\n")
    except OSError:
        pass  # the starter went away (Ctrl-C): nobody to tell


def _failure(err: Exception) -> tuple[int, str]:
    """The exit code and the one-line reason for an error that stopped the start."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        from shipyard.spec import Resources
        from shipyard.spec.errors import describe_errors

        return BAD_PROFILE, "its resources are not valid: " + "; ".join(
            f"resources.{problem}" for problem in describe_errors(err, Resources))
    summary = str(err).strip().splitlines()
    return NOT_STARTED, f"{type(err).__name__}: {summary[0]}" if summary else type(err).__name__


def _start(args: argparse.Namespace):
    """Start the LocalCluster and write the state file; the cluster, or an exception
    (with nothing left running)."""
    from distributed import LocalCluster

    from shipyard.spec import Resources

    resources = Resources.model_validate(json.loads(args.resources))
    cluster = LocalCluster(
        n_workers=resources.workers, threads_per_worker=resources.threads_per_worker,
        memory_limit=resources.dask_memory_limit, processes=True, dashboard_address=":0",
    )
    try:
        workers = cluster.scheduler_info.get("workers", {})
        limits = {w.get("memory_limit") for w in workers.values()}
        write_json_atomic(args.state, {
            "pid": os.getpid(), "started": start_time(os.getpid()),
            "address": cluster.scheduler_address, "dashboard": cluster.dashboard_link,
            "workers": resources.workers, "threads_per_worker": resources.threads_per_worker,
            # the bytes each worker got: what `auto` came to on this machine
            "memory_per_worker": limits.pop() if len(limits) == 1 else
            resources.memory_per_worker,
        })
    except BaseException:
        cluster.close()
        raise
    return cluster, resources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipyard.backends.local_daemon")
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--resources", default="{}", help="JSON: spec.resources fields")
    parser.add_argument("--ready-fd", type=int, default=None,
                        help="a pipe to report on once the cluster is up or has failed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    ready = None
    if args.ready_fd is not None:
        # the Dask workers this starts must not hold the pipe open after we die
        os.set_inheritable(args.ready_fd, False)
        ready = os.fdopen(args.ready_fd, "w")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        cluster, resources = _start(args)
    except Exception as err:
        log.exception("the local cluster could not start")
        code, message = _failure(err)
        _tell(ready, {"ok": False, "exit_code": code, "message": message})
        return code
    log.info("local cluster up at %s, dashboard %s (%d workers x %d threads, memory %s)",
             cluster.scheduler_address, cluster.dashboard_link, resources.workers,
             resources.threads_per_worker, resources.dask_memory_limit)
    _tell(ready, {"ok": True})
    try:
        while not stop.wait(1.0):
            pass
    finally:
        args.state.unlink(missing_ok=True)
        cluster.close()
        log.info("local cluster down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
