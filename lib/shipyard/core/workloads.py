"""The workloads, one descriptor each: what shipyard needs to know about a workload
besides its spec model, found by name and imported only when a job needs it.

Adding a workload is its own folder (spec model, checks, run function) plus a line
here and its block in :class:`shipyard.spec.job.JobBody` (and, for tables on its report
page, a builder in :mod:`shipyard.report.tables` that ``result_tables`` names). What its
block says about data (:func:`data_fields`) is what trial runs sample, the stage cache
fingerprints and the Kubernetes backend moves to object storage.

Examples
--------
>>> workload("dataframe").resource, workload("torch").engine
('DaskJob', 'ray')
>>> [w.name for w in WORKLOADS.values()]
['dataframe', 'sklearn', 'torch', 'python']
>>> block = {"inputs": {"a": {"path": "in.csv"}}, "output": {"path": "s3://b/out"}}
>>> [(f.field, f.path, f.output) for f in data_fields("dataframe", block)]
[('inputs.a.path', 'in.csv', False), ('output.path', 's3://b/out', True)]
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Workload", "WORKLOADS", "workload", "resolve", "DataField", "data_fields"]


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
        every entry of a mapping; each a mapping with ``path`` and ``storage_options``):
        what a pipeline's trial run samples and redirects.
    read_files : tuple of str
        Where in its block it names other files it reads, as plain paths (a saved
        model): never sampled.
    declares_inputs : bool
        False where the block does not say what it reads (a python job's ``params``
        may name anything): the stage cache then looks for paths among the parameters.
    code : str or None
        The block's field that names user code (``module:function``), whose source is
        part of a stage's cache key.
    result_tables : str or None
        ``module:function`` building the report's tables from its ``result.json``.
    """

    name: str
    run: str
    checks: str | None
    resource: str
    engine: str | None
    input_paths: tuple[str, ...] = ()
    output_paths: tuple[str, ...] = ()
    read_files: tuple[str, ...] = ()
    declares_inputs: bool = True
    code: str | None = None
    result_tables: str | None = None


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("dataframe", run="shipyard.data.job:run", checks="shipyard.data.checks:check_workload",
             resource="DaskJob", engine="dask", input_paths=("inputs.*",),
             output_paths=("output",),
             result_tables="shipyard.report.tables:dataframe_tables"),
    Workload("sklearn", run="shipyard.ml.job:run", checks="shipyard.ml.checks:check_workload",
             resource="DaskJob", engine="dask", input_paths=("input", "batch_predict.input"),
             output_paths=("batch_predict.output",), read_files=("model",),
             result_tables="shipyard.report.tables:sklearn_tables"),
    Workload("torch", run="shipyard.train.job:run", checks="shipyard.train.checks:check_workload",
             resource="RayJob", engine="ray", input_paths=("data",), code="train_loop",
             result_tables="shipyard.report.tables:torch_tables"),
    Workload("python", run="shipyard.python_job:run", checks=None, resource="Job",
             engine=None, declares_inputs=False, code="entrypoint",
             result_tables="shipyard.report.tables:python_tables"),
)}


def workload(name: str) -> Workload:
    """The descriptor of workload ``name`` (KeyError for one that does not exist)."""
    return WORKLOADS[name]


def resolve(target: str) -> Callable[..., Any]:
    """The function a descriptor's ``module:function`` names, imported now."""
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


@dataclass(frozen=True)
class DataField:
    """One place where a workload's block names data.

    Attributes
    ----------
    field : str
        Where, dotted, in the block (``inputs.main.path``).
    path : str
        The path or URL as written.
    output : bool
        Whether the workload writes it.
    holder : dict or None
        The mapping with ``path`` (and ``storage_options``) in the block given, to read
        or change; None for a plain path (a saved model).
    """

    field: str
    path: str
    output: bool
    holder: dict[str, Any] | None

    @property
    def storage_options(self) -> dict[str, Any]:
        """The fsspec options given with the path (none for a plain path)."""
        return dict((self.holder or {}).get("storage_options") or {})


def data_fields(name: str, block: dict[str, Any]) -> list[DataField]:
    """The data that workload ``name``'s ``block`` (the spec document's, a plain dict)
    reads and writes: its other files first, then its inputs, then its outputs.

    Only what the block declares: a python job's parameters are not looked into.
    """
    kind = workload(name)
    found: list[DataField] = []
    for dotted in kind.read_files:
        value = _at(block, dotted.split("."))
        if isinstance(value, str):
            found.append(DataField(dotted, value, False, None))
    for dotted, output in ([(d, False) for d in kind.input_paths]
                           + [(d, True) for d in kind.output_paths]):
        for where, holder in _mappings(block, dotted.split(".")):
            if isinstance(holder.get("path"), str):
                found.append(DataField(f"{where}.path", holder["path"], output, holder))
    return found


def _at(node: Any, keys: list[str]) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _mappings(node: Any, keys: list[str], where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """``(dotted place, mapping)`` at ``keys`` below ``node``; ``*`` is each entry."""
    if not keys:
        return [(where, node)] if isinstance(node, dict) else []
    if not isinstance(node, dict):
        return []
    key, rest = keys[0], keys[1:]
    children = node.items() if key == "*" else [(key, node.get(key))]
    found = []
    for child_key, child in children:
        found.extend(_mappings(child, rest, f"{where}.{child_key}" if where else str(child_key)))
    return found
