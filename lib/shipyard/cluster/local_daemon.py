"""A long-lived local Dask cluster: ``python -m shipyard.cluster.local_daemon``.

Started by ``shipyard cluster up local``, stopped by ``shipyard cluster down local``
(SIGTERM). While it runs, its state file (scheduler address, dashboard, pid) tells
local jobs to compute on it instead of starting a LocalCluster per attempt.
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

from shipyard.atomic import write_json_atomic
from shipyard.jobs.procs import start_time

log = logging.getLogger("shipyard.local_cluster")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipyard.cluster.local_daemon")
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--resources", default="{}", help="JSON: spec.resources fields")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    from distributed import LocalCluster

    from shipyard.spec import Resources

    resources = Resources.model_validate(json.loads(args.resources))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    cluster = LocalCluster(
        n_workers=resources.workers, threads_per_worker=resources.threads_per_worker,
        memory_limit=resources.memory_per_worker or "auto", processes=True,
        dashboard_address=":0",
    )
    try:
        write_json_atomic(args.state, {
            "pid": os.getpid(), "started": start_time(os.getpid()),
            "address": cluster.scheduler_address, "dashboard": cluster.dashboard_link,
            "workers": resources.workers, "threads_per_worker": resources.threads_per_worker,
            "memory_per_worker": resources.memory_per_worker,
        })
        log.info("local cluster up at %s, dashboard %s", cluster.scheduler_address,
                 cluster.dashboard_link)
        while not stop.wait(1.0):
            pass
    finally:
        args.state.unlink(missing_ok=True)
        cluster.close()
        log.info("local cluster down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
