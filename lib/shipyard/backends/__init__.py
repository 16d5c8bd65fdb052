"""Where jobs run: one module per backend behind :class:`~shipyard.backends.base.Backend`.

Backends are found by name through a lazy registry, so a backend's dependencies
(``kubernetes``, ``ray``) are imported only when that backend is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.backends.base import Backend
    from shipyard.backends.profiles import ClusterProfile
    from shipyard.core.home import Home
    from shipyard.core.store import JobStore

__all__ = ["BACKENDS", "get_backend"]

#: backend name -> "module:class", imported on first use
BACKENDS = {
    "local": "shipyard.backends.local:LocalBackend",
    "dask": "shipyard.backends.dask_scheduler:DaskSchedulerBackend",
    "ray": "shipyard.backends.ray_jobs:RayJobsBackend",
    "kubernetes": "shipyard.backends.kubernetes.backend:KubernetesBackend",
}


def get_backend(profile: ClusterProfile, home: Home, store: JobStore) -> Backend:
    """An instance of the backend that ``profile`` names."""
    module, cls = BACKENDS[profile.backend].split(":")
    return getattr(importlib.import_module(module), cls)(profile, home, store)
