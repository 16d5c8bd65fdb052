"""The workloads, one descriptor each: what shipyard needs to know about a workload
besides its spec model, found by name and imported only when a job needs it.

Adding a workload is its own folder (spec model, checks, run function) plus a line
here and its block in :class:`shipyard.spec.job.JobBody`.

Examples
--------
>>> workload("dataframe").resource, workload("torch").engine
('DaskJob', 'ray')
>>> [w.name for w in WORKLOADS.values()]
['dataframe', 'sklearn', 'torch', 'python']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Workload", "WORKLOADS", "workload", "resolve"]


@dataclass(frozen=True)
class Workload:
    """What a workload is, as the layers around it need it.

    Attributes
    ----------
    name : str
        Its block in a job spec.
    run : str
        ``module:function`` the runner calls with the block and the job's context.
    checks : str or None
        ``module:function`` returning the problems a loaded spec's block has that only
        its data shows (input schemas), or None.
    resource : str
        The Kubernetes resource that runs it (``DaskJob``, ``RayJob``, ``Job``).
    engine : str or None
        ``dask`` or ``ray`` where it computes on one; None where it starts what it needs.
    input_paths, output_paths : tuple of str
        Where in its block it names the data it reads and writes (dotted; ``*`` is
        every entry of a mapping): what a pipeline's trial run samples and redirects.
    """

    name: str
    run: str
    checks: str | None
    resource: str
    engine: str | None
    input_paths: tuple[str, ...] = ()
    output_paths: tuple[str, ...] = ()


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("dataframe", run="shipyard.data.job:run", checks="shipyard.data.checks:check_workload",
             resource="DaskJob", engine="dask", input_paths=("inputs.*",),
             output_paths=("output",)),
    Workload("sklearn", run="shipyard.ml.job:run", checks="shipyard.ml.checks:check_workload",
             resource="DaskJob", engine="dask", input_paths=("input", "batch_predict.input"),
             output_paths=("batch_predict.output",)),
    Workload("torch", run="shipyard.train.job:run", checks="shipyard.train.checks:check_workload",
             resource="RayJob", engine="ray", input_paths=("data",)),
    Workload("python", run="shipyard.python_job:run", checks=None, resource="Job",
             engine=None),
)}


def workload(name: str) -> Workload:
    """The descriptor of workload ``name`` (KeyError for one that does not exist)."""
    return WORKLOADS[name]


def resolve(target: str) -> Callable[..., Any]:
    """The function a descriptor's ``module:function`` names, imported now."""
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)
