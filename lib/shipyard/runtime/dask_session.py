"""The Dask cluster one attempt computes on.

Either a ``LocalCluster`` sized from ``spec.resources`` (started on first use and
closed with the attempt), or a client of an existing scheduler (``tcp://host:port``:
the ``dask`` backend, or a local cluster started with ``shipyard cluster up``).

Out of core: each worker's memory limit is ``memory_per_worker``. A worker past
:data:`WORKER_MEMORY` ``spill`` of it writes data to disk (in ``scratch_dir``, the
attempt's own scratch space), pauses new work past ``pause`` and is restarted past
``terminate``; lost results are recomputed. With partitions of about 100 MB (see the
readers) a job over data several times the cluster's memory streams through it.

Logs: what the workers print (``print``, logging to stdout/stderr) is forwarded to this
process's stderr, hence the attempt log, one line per line with the time and the worker's
name (:mod:`shipyard.runtime.worker_logs`), so remote workers' output stays with the job
when their cluster goes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.core.errors import ClusterError

if TYPE_CHECKING:
    from distributed import Client

    from shipyard.runtime.worker_logs import DaskLogForwarding
    from shipyard.spec import Resources

__all__ = ["DaskSession"]

log = logging.getLogger("shipyard.dask")

#: Fractions of a worker's memory limit (Dask's documented defaults, set explicitly so
#: the behaviour is stated here and travels to the worker processes).
WORKER_MEMORY = {
    "distributed.worker.memory.target": 0.6,      # start spilling to disk
    "distributed.worker.memory.spill": 0.7,       # spill by process memory
    "distributed.worker.memory.pause": 0.8,       # stop taking new tasks
    "distributed.worker.memory.terminate": 0.95,  # restart the worker
}


class DaskSession:
    """A lazily started Dask client for one attempt.

    Parameters
    ----------
    resources : Resources
        Sizes the LocalCluster (workers, threads, memory limit, GPU resources).
    address : str, optional
        An existing scheduler to connect to instead of starting a LocalCluster.
    connect_timeout : float
        Seconds to wait for an existing scheduler before giving up.
    scratch_dir : path, optional
        Where a LocalCluster's workers spill to disk (default: Dask's temporary dir).
    forward_output : bool, default True
        Forward the workers' output to this process's log (a pipeline's shared cluster
        does not: each stage's runner forwards what its own client's tasks print).
    code : Path, optional
        The job's code package, uploaded to an existing scheduler's cluster on connecting
        (:func:`shipyard.runtime.code.upload_code`); a LocalCluster's workers import what
        this process imports.
    """

    def __init__(self, resources: Resources, address: str | None = None,
                 connect_timeout: float = 10.0, scratch_dir: str | None = None,
                 forward_output: bool = True, code: Path | None = None):
        self.resources = resources
        self.code = code
        self.address = address
        self.connect_timeout = connect_timeout
        self.scratch_dir = scratch_dir
        self.forward_output = forward_output
        self._cluster = None
        self._client: Client | None = None
        self._forwarding: DaskLogForwarding | None = None

    @property
    def started(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> Client:
        """The Dask client, starting the LocalCluster or connecting on first use."""
        if self._client is None:
            self._client = self._connect() if self.address else self._start_local()
            if self.address and self.code is not None:
                from shipyard.runtime.code import upload_code

                upload_code(self._client, self.code)
            if self.forward_output:
                self._forward_worker_output()
        return self._client

    @property
    def scheduler_address(self) -> str:
        """The scheduler's address (starting the cluster if need be), for other clients."""
        return self.client.scheduler.address

    def _forward_worker_output(self) -> None:
        from shipyard.runtime.worker_logs import forward_dask_worker_output

        # A LocalCluster's workers inherit this process's stderr: their forwarded lines
        # replace the raw ones. Remote workers also keep printing to their own logs.
        self._forwarding = forward_dask_worker_output(self._client,
                                                      echo=self.address is not None)

    @property
    def dashboard_link(self) -> str | None:
        return self._client.dashboard_link if self._client is not None else None

    def _connect(self) -> Client:
        from distributed import Client

        # distributed's connect retries a refused connection until the timeout: a
        # scheduler still starting (its pod, its Service) is waited for
        log.info("waiting up to %gs for the Dask scheduler at %s", self.connect_timeout,
                 self.address)
        try:
            client = Client(self.address, timeout=self.connect_timeout)
        except (OSError, TimeoutError) as err:
            raise ClusterError(
                f"could not reach the Dask scheduler at {self.address} within "
                f"{self.connect_timeout:g}s ({type(err).__name__}: {err}); check that it is "
                "running and that this machine can reach it"
            ) from None
        log.info("connected to Dask scheduler %s (%d workers)", self.address,
                 len(client.scheduler_info().get("workers", {})))
        return client

    def _start_local(self) -> Client:
        import dask
        from distributed import Client, LocalCluster

        res = self.resources
        worker_resources = {"GPU": res.gpus_per_worker} if res.gpus_per_worker else None
        dask.config.set(WORKER_MEMORY)
        # Arrow's own allocator keeps freed memory from the OS; Dask counts it as
        # unmanaged and restarts workers for it (seen streaming 4 GiB through 600 MiB
        # workers). The system allocator returns it, trimmed by distributed's
        # MALLOC_TRIM_THRESHOLD_ setting for the same variable list.
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ})
        # The scheduler runs in this process; its P2P shuffle plugin logs each shuffle's
        # start and end at WARNING (two lines per merge or sort), which buried the job's
        # own lines. Its real problems still come up as errors.
        logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
        try:
            self._cluster = LocalCluster(
                local_directory=self.scratch_dir,
                n_workers=res.workers,
                threads_per_worker=res.threads_per_worker,
                memory_limit=res.dask_memory_limit,
                processes=True,
                dashboard_address=":0",  # any free port: several jobs may run at once
                resources=worker_resources,
            )
        except Exception as err:
            raise ClusterError(f"could not start a local Dask cluster: {err}") from err
        log.info("started LocalCluster: %d workers x %d threads, dashboard %s",
                 res.workers, res.threads_per_worker, self._cluster.dashboard_link)
        return Client(self._cluster)

    def close(self) -> None:
        """Close the client and, if this session started one, the LocalCluster (the
        workers' output forwarding first, with the lines still on their way)."""
        client, cluster, forwarding = self._client, self._cluster, self._forwarding
        self._client = self._cluster = self._forwarding = None
        if forwarding is not None:
            forwarding.close()  # never raises
        for thing in (client, cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception as err:  # closing is best effort: the attempt is over
                    log.warning("closing %s failed: %s", type(thing).__name__, err)
