"""The ``dask`` backend: jobs compute on an existing Dask scheduler (``tcp://host:port``).

The job layer stays local (a supervisor per job, as with ``local``); only the runner's
Dask client connects to the given scheduler instead of starting a LocalCluster. When
an attempt is killed its client disconnects and the scheduler drops its tasks.
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from shipyard.backends.base import ExistingCluster
from shipyard.backends.local import LocalBackend
from shipyard.core.errors import ClusterError, UsageError

__all__ = ["DaskSchedulerBackend"]


class DaskSchedulerBackend(ExistingCluster, LocalBackend):
    """Local supervisors, an existing Dask scheduler for the computation."""

    name = "dask"
    cluster_kind = "an existing Dask scheduler"
    CONNECT_TIMEOUT = 5.0

    def _host_port(self) -> tuple[str, int]:
        address = self.profile.address or ""
        parsed = urlparse(address)
        if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or not parsed.port:
            raise UsageError(
                f"cluster {self.profile.name!r}: a Dask scheduler address is "
                f"tcp://host:port, got {address!r}"
            )
        return parsed.hostname, parsed.port

    def _check_reachable(self) -> None:
        host, port = self._host_port()
        try:
            with socket.create_connection((host, port), timeout=self.CONNECT_TIMEOUT):
                pass
        except OSError as err:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {self.profile.address} "
                f"({err.strerror or err}); check that it is running and reachable from here"
            ) from None

    def _scheduler_address(self) -> str | None:
        return self.profile.address


