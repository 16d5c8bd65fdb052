"""shipyard: batch machine learning on clusters.

Give it a job (a YAML spec, or the same structure in Python) and it runs it, on a
laptop or on a cluster, unchanged::

    import shipyard

    job = shipyard.run("jobs/basics.yaml", cluster="local")
    print(job.status().state, job.result())

The public API is imported lazily, so ``import shipyard`` (and the CLI's quick
commands) do not pay for Dask, pandas or pydantic until they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load": "shipyard.spec",
    "JobSpec": "shipyard.spec",
    "submit": "shipyard.jobs.api",
    "run": "shipyard.jobs.api",
    "resume": "shipyard.jobs.api",
    "PipelineSpec": "shipyard.spec.pipeline",
    "render": "shipyard.jobs.api",
    "get_job": "shipyard.jobs.api",
    "list_jobs": "shipyard.jobs.api",
    "Job": "shipyard.jobs.api",
    "JobState": "shipyard.core.states",
    "JobRecord": "shipyard.core.store",
    "JobContext": "shipyard.runtime.context",
    "result_schema": "shipyard.jobs.result_schema",
    "ShipyardError": "shipyard.core.errors",
    "SpecError": "shipyard.core.errors",
    "InputDataError": "shipyard.core.errors",
    "ClusterError": "shipyard.core.errors",
    "JobFailedError": "shipyard.core.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from shipyard.runtime.context import JobContext
    from shipyard.core.errors import (ClusterError, InputDataError, JobFailedError,
                                 ShipyardError, SpecError)
    from shipyard.jobs.api import Job, get_job, list_jobs, render, resume, run, submit
    from shipyard.jobs.result_schema import result_schema
    from shipyard.core.states import JobState
    from shipyard.spec.pipeline import PipelineSpec
    from shipyard.core.store import JobRecord
    from shipyard.spec import JobSpec, load


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
