"""The Ray cluster one attempt trains on.

Either a local Ray instance sized from ``spec.resources`` (``workers x threads_per_worker``
CPUs, and the GPUs torch sees), started on first use and shut down with the attempt, or
the existing cluster the attempt runs in (the ``ray`` backend submits the runner as a Ray
job, whose driver connects with ``address="auto"``).

A local instance is always started explicitly (``address="local"``): ``ray.init()`` with no
address would join whatever cluster ``ray start`` last left on this machine.

Ray prints its workers' output in this (the driver's) process, ``(RayTrainWorker pid=...,
ip=...) line``; :meth:`RaySession.start` puts the time in front of each such line
(:func:`shipyard.runtime.ray_logs.install_ray_log_timestamps`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import ClusterError

if TYPE_CHECKING:
    from shipyard.spec import Resources

__all__ = ["RaySession", "LOCAL_OBJECT_STORE_BYTES", "quiet_auth_notice"]

log = logging.getLogger("shipyard.ray")

#: The local object store: enough for shards of datasets a laptop trains on, small
#: enough to leave the machine's memory to the workers (Ray's default takes 30%).
LOCAL_OBJECT_STORE_BYTES = 512 * 1024**2


def quiet_auth_notice() -> None:
    """Silence Ray's "Token authentication is enabled" notice, printed on every connection:
    it is not about the job, and it would be a second paragraph under an error message."""
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR)


def _local_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no torch, or a broken CUDA install: no GPUs to offer
        return 0


class RaySession:
    """A lazily started Ray connection for one attempt.

    Parameters
    ----------
    resources : Resources
        Sizes a local instance.
    address : str, optional
        ``auto`` or ``host:port`` of an existing cluster; None starts a local instance.
    """

    def __init__(self, resources: Resources, address: str | None = None):
        self.resources = resources
        self.address = address
        self.started = False
        self.start_seconds: float | None = None
        self.dashboard_url: str | None = None

    def start(self) -> None:
        """Start the local instance or connect to the cluster (once)."""
        if self.started:
            return
        import ray

        from shipyard.runtime.ray_logs import install_ray_log_timestamps

        quiet_auth_notice()
        install_ray_log_timestamps()  # before the first worker line; never raises
        began = time.perf_counter()
        try:
            if self.address:
                context = ray.init(address=self.address, logging_level=logging.WARNING)
            else:
                res = self.resources
                planned = self.planned_resources()
                context = ray.init(
                    address="local",
                    num_cpus=int(planned["CPU"]),
                    num_gpus=int(planned["GPU"]),
                    object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                    # the dashboard also serves the State API Ray Train's clean-up
                    # actor polls; without it that actor warns every few seconds
                    include_dashboard=True,
                    dashboard_host="127.0.0.1",
                    # several jobs may run at once: no fixed port, and none picked here
                    # either (another process may take it before the dashboard binds it);
                    # the dashboard binds any free one and Ray reports which
                    dashboard_port=0,
                    logging_level=logging.WARNING,
                )
        except Exception as err:
            try:
                ray.shutdown()  # whatever a half-done start left running
            except Exception:  # best effort: the error below is what matters
                pass
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            raise ClusterError(f"could not start or reach {where}: {err}") from err
        self.started = True
        self.start_seconds = time.perf_counter() - began
        self.dashboard_url = getattr(context, "dashboard_url", None) or None
        log.info("Ray %s in %.1fs: %s", "connected" if self.address else "started",
                 self.start_seconds, self.describe())

    def planned_resources(self) -> dict[str, float] | None:
        """What a local instance will have once started (``CPU``, ``GPU``), known
        without starting it; None for an existing cluster, which only it can say."""
        if self.address:
            return None
        res = self.resources
        return {"CPU": float(res.workers * res.threads_per_worker),
                "GPU": float(_local_gpus())}

    def cluster_resources(self) -> dict[str, float]:
        """The cluster's total resources (``CPU``, ``GPU``, ``memory``, ...)."""
        import ray

        return dict(ray.cluster_resources())

    def describe(self) -> dict[str, Any]:
        total = self.cluster_resources()
        return {"address": self.address or "local", "cpus": total.get("CPU", 0),
                "gpus": total.get("GPU", 0), "dashboard": self.dashboard_url}

    def close(self) -> None:
        """Disconnect, and stop the local instance if this session started one."""
        if not self.started:
            return
        import ray

        from shipyard.runtime.ray_logs import uninstall_ray_log_timestamps

        self.started = False
        try:
            ray.shutdown()  # prints the workers' last (deduplicated) lines, with times
        except Exception as err:  # best effort: the attempt is over
            log.warning("ray.shutdown failed: %s", err)
        finally:
            uninstall_ray_log_timestamps()
