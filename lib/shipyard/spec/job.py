"""The job spec (``apiVersion: shipyard/v1``, ``kind: Job``): its models.

A spec is validated once, where it enters (:func:`shipyard.spec.load`), into frozen pydantic models
that forbid unknown keys. Every problem is reported with its dotted path, and a
misspelt key gets the closest valid name as a suggestion::

    jobs/bad.yaml is not a valid job spec:
      spec.resources.workers: must be >= 1, got 0
      spec.resorces: unknown field; did you mean 'resources'?

Examples
--------
>>> from shipyard.spec import load
>>> spec = load({
...     "apiVersion": "shipyard/v1", "kind": "Job",
...     "metadata": {"name": "hello"},
...     "spec": {"timeout": "10m", "python": {"entrypoint": "os.path:join",
...                                          "params": {}}},
... })
>>> spec.name, spec.workload_name, spec.spec.timeout
('hello', 'python', 600.0)
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, Field, PlainSerializer,
    PrivateAttr, Strict, ValidationError, ValidationInfo, field_validator, model_validator)

from shipyard.core.errors import InputDataError, InputUnreachableError, SpecError
from shipyard.core.model import StrictModel
from shipyard.core.workloads import WORKLOADS as WORKLOAD_REGISTRY
from shipyard.core.workloads import resolve, workload
from shipyard.data.spec import DataFrameWorkload
from shipyard.spec.entrypoints import check_call, resolve_callable, resolve_for_spec
from shipyard.ml.spec import SklearnWorkload
from shipyard.spec.errors import describe_errors
from shipyard.train.spec import TorchWorkload
from shipyard.core.units import format_duration, format_memory, parse_duration, parse_memory


__all__ = [
    "API_VERSION",
    "WORKLOADS",
    "JobSpec",
    "JobBody",
    "SpecDocument",
    "Metadata",
    "Resources",
    "PythonWorkload",
    "load_job",
    "check_data",
    "the_workload",
]

API_VERSION = "shipyard/v1"

log = logging.getLogger("shipyard.spec")

#: The workload blocks a job may carry, exactly one at a time (shipyard.core.workloads).
WORKLOADS: tuple[str, ...] = tuple(WORKLOAD_REGISTRY)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def _duration(value: Any) -> float:
    return parse_duration(value)


#: How a spec says "let Dask decide" for ``memory_per_worker`` (the default).
AUTO_MEMORY = "auto"


def _memory(value: Any) -> int | None:
    # the one place that decides what `auto` means: None, as if the field were left out
    if value is None or (isinstance(value, str) and value.strip().lower() == AUTO_MEMORY):
        return None
    try:
        return parse_memory(value)
    except ValueError as err:
        raise ValueError(f"{err} (or {AUTO_MEMORY}: Dask decides)") from None


def _show_memory(size: int | None) -> str:
    return AUTO_MEMORY if size is None else format_memory(size)


#: Seconds, written in the spec as ``30s``, ``10m``, ``1h30m`` (or a number of seconds).
Duration = Annotated[float, BeforeValidator(_duration),
                     PlainSerializer(format_duration, return_type=str)]
#: Bytes, written in the spec as ``512MiB``, ``4GiB``, ``2GB``; ``auto`` (or null) is None,
#: "let Dask decide", and is written back as ``auto``.
MemoryLimit = Annotated[int | None, BeforeValidator(_memory),
                        PlainSerializer(_show_memory, return_type=str)]
#: An integer that must be written as one (``true`` or ``"2"`` are refused, not coerced).
Count = Annotated[int, Strict()]


def _dns_label(name: str) -> str:
    problem = dns_label_problem(name)
    if problem:
        raise ValueError(problem)
    return name


#: A job's, pipeline's or stage's name: a DNS-1123 label (see :func:`dns_label_problem`).
DnsLabel = Annotated[str, AfterValidator(_dns_label)]


def dns_label_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS-1123 label, with a corrected suggestion; None if it is one.

    Examples
    --------
    >>> dns_label_problem("churn-prep") is None
    True
    >>> dns_label_problem("Churn_Prep")
    "must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters), got 'Churn_Prep'; try 'churn-prep'"
    """
    if len(name) <= 63 and _DNS_LABEL.match(name):
        return None
    fixed = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    hint = f"; try {fixed!r}" if fixed and _DNS_LABEL.match(fixed) else ""
    return (
        "must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending "
        f"with a letter or digit, at most 63 characters), got {name!r}{hint}"
    )


class Metadata(StrictModel):
    """``metadata``: the job's name and optional labels."""

    name: DnsLabel
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels_are_kubernetes_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        # labels travel to Kubernetes objects, so they must be valid there too
        for key, value in labels.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise ValueError(
                    f"label {key}={value!r}: values are at most 63 letters, digits, '-', "
                    "'_' or '.', starting and ending with a letter or digit"
                )
        return labels


class Resources(StrictModel):
    """``spec.resources``: the size of the Dask (or Ray) cluster each attempt gets."""

    workers: Count = Field(2, ge=1)
    threads_per_worker: Count = Field(1, ge=1)
    #: bytes per worker; None for ``auto`` (the default): Dask decides
    memory_per_worker: MemoryLimit = None
    gpus_per_worker: Count = Field(0, ge=0)

    @property
    def dask_memory_limit(self) -> int | str:
        """What a Dask worker's ``memory_limit`` gets: the bytes, or ``"auto"`` (Dask
        shares the machine's memory among the workers) where the spec says ``auto``
        or nothing.

        Examples
        --------
        >>> Resources(memory_per_worker="auto").dask_memory_limit
        'auto'
        >>> Resources(memory_per_worker="1GiB").dask_memory_limit
        1073741824
        """
        return AUTO_MEMORY if self.memory_per_worker is None else self.memory_per_worker


class PythonWorkload(StrictModel):
    """``spec.python``: call ``func(ctx, **params)`` and keep its JSON-able return value.

    ``entrypoint`` is ``"package.module:function"``. The module is imported at load time
    (from the spec's directory, the current directory or the installed packages) and
    ``params`` are checked against the function's signature.
    """

    entrypoint: str
    # validated even when left out: a function with required parameters needs them
    params: dict[str, Any] = Field(default_factory=dict, validate_default=True)

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint_resolves(cls, entrypoint: str, info: ValidationInfo) -> str:
        resolve_for_spec(entrypoint, info.context)
        return entrypoint

    @field_validator("params")
    @classmethod
    def _params_fit_signature(cls, params: dict[str, Any], info: ValidationInfo) -> dict:
        context = info.context or {}
        entrypoint = info.data.get("entrypoint")  # absent when the entrypoint was invalid
        if entrypoint and context.get("check_references", True):
            func = resolve_callable(entrypoint, context.get("search_paths", ()))
            check_call(func, 1, params)
        return params


#: Sets the default of ``spec.report.figures`` where a job runs (``false`` on a CI
#: machine that never looks at the figures); a spec that says ``figures`` wins.
FIGURES_ENV = "SHIPYARD_REPORT_FIGURES"


def _figures_default() -> bool:
    return os.environ.get(FIGURES_ENV, "true").strip().lower() not in ("0", "false", "no", "off")


class ReportSettings(StrictModel):
    """``spec.report``: what the job's report (``runs/<id>/report/``) holds.

    ``figures: false`` skips the figures and the computations behind them (an extra
    pass over a dataframe job's input, learning curves); the page is written anyway.
    Unset, it is true unless ``SHIPYARD_REPORT_FIGURES=false`` where the job runs.
    """

    figures: bool = Field(default_factory=_figures_default)


class CodeSettings(StrictModel):
    """``spec.code``: what goes into the job's code package, shipped to clusters that
    share no disk with this machine (:mod:`shipyard.core.code_package`). The spec's
    directory always does; ``paths`` adds files or folders (relative to the spec, each
    at the top of the package under its own name), ``exclude`` leaves out more than the
    defaults (version control, environments, caches, data files)."""

    paths: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class JobBody(StrictModel):
    """``spec``: where and how the job runs, and its one workload block."""

    cluster: str | None = None
    resources: Resources = Field(default_factory=Resources)
    retries: Count = Field(0, ge=0)
    timeout: Duration | None = None
    report: ReportSettings = Field(default_factory=ReportSettings)
    code: CodeSettings = Field(default_factory=CodeSettings)
    #: a trial run on this share of each input (``shipyard run --sample``): workloads
    #: read ``sample`` on their inputs; a python job sees it as ``ctx.sample``
    sample: Annotated[float, Field(gt=0, le=1)] | None = None
    dataframe: DataFrameWorkload | None = None
    sklearn: SklearnWorkload | None = None
    torch: TorchWorkload | None = None
    python: PythonWorkload | None = None

    @model_validator(mode="after")
    def _exactly_one_workload(self) -> JobBody:
        the_workload(self)
        return self


def the_workload(block: BaseModel,
                 rule: str = "exactly one workload block is required") -> str:
    """The name of the one workload block a job's ``spec`` (or a pipeline stage) has.

    Raises
    ------
    ValueError
        Saying ``rule`` and what was found, where there is none or more than one.
    """
    present = [name for name in WORKLOADS if getattr(block, name, None) is not None]
    if len(present) != 1:
        found = "none" if not present else f"{len(present)}: {', '.join(present)}"
        raise ValueError(f"{rule} ({', '.join(WORKLOADS)}); found {found}")
    return present[0]


class SpecDocument(StrictModel):
    """What job and pipeline specs share: ``apiVersion``, ``metadata``, where the spec
    came from, and how it is written out again."""

    api_version: Literal["shipyard/v1"] = Field(alias="apiVersion")
    kind: str  # each kind of spec narrows it
    metadata: Metadata

    _source: str = PrivateAttr(default="<dict>")
    _base_dir: str | None = PrivateAttr(default=None)

    @property
    def name(self) -> str:
        """The job's (or pipeline's) name (``metadata.name``)."""
        return self.metadata.name

    @property
    def source(self) -> str:
        """Where the spec came from: a file path, or ``<dict>``."""
        return self._source

    @property
    def base_dir(self) -> str | None:
        """The directory of the spec file (searched for entrypoint modules), if any."""
        return self._base_dir

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain document, with the fields the user set (and overrides)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def to_yaml(self) -> str:
        """The spec as YAML, loadable again with :func:`load`."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


class JobSpec(SpecDocument):
    """A whole job spec: ``apiVersion``, ``kind``, ``metadata`` and ``spec``.

    Build one with :func:`load`, which reports every problem with its path.
    """

    kind: Literal["Job"]
    spec: JobBody

    @property
    def workload_name(self) -> str:
        """Which workload block the job carries (``python``, ``dataframe``, ...)."""
        return the_workload(self.spec)

    @property
    def workload(self) -> BaseModel:
        """The workload block itself."""
        return getattr(self.spec, self.workload_name)


def load_job(document: Mapping[str, Any], name: str = "the job spec",
             base_dir: str | None = None, *, check_references: bool = True,
             check_inputs: bool = True) -> JobSpec:
    """A ``kind: Job`` document (overrides applied) as a validated :class:`JobSpec`, its
    references and input schemas checked as :func:`shipyard.spec.load` says.

    Raises
    ------
    SpecError
        Listing every problem with its dotted path.
    """
    search_paths = [p for p in (base_dir, str(Path.cwd())) if p]
    try:
        spec = JobSpec.model_validate(
            document, context={"search_paths": search_paths,
                               "check_references": check_references}
        )
    except ValidationError as err:
        raise SpecError(f"{name} is not a valid job spec", describe_errors(err, JobSpec)) from None
    if check_references:
        missing = [f"spec.code.paths[{i}]: {path!r} does not exist (relative to "
                   f"{base_dir or Path.cwd()}); name a file or folder the job's code needs"
                   for i, path in enumerate(spec.spec.code.paths)
                   if not (Path(base_dir or Path.cwd()) / path).exists()]
        if missing:
            raise SpecError(f"{name} is not a valid job spec", missing)
    if check_references and check_inputs:
        check_data(spec, f"{name} is not a valid job spec", here=True)
    spec._source = name
    spec._base_dir = base_dir
    return spec


def check_data(spec: JobSpec, headline: str, *, here: bool = False) -> None:
    """Run the workload's checks of its data (input schemas, the columns it names).

    ``load`` runs them at submission (``here``); the runner runs them once more, where
    the job runs, before anything starts (the data may have changed meanwhile). At
    submission, an object-store input this machine cannot read at all (no credentials,
    no route: the cluster's pods may have both) is said in one warning line and the
    checks are left to the runner.

    Raises
    ------
    SpecError
        ``headline`` with every problem found.
    """
    if here:
        unreadable = _unreadable_here(spec)
        if unreadable:
            for line in unreadable:
                log.warning("warning: %s; its data is checked where the job runs", line)
            return
    checks = workload(spec.workload_name).checks
    problems = resolve(checks)(spec.workload) if checks else []
    if problems:
        raise SpecError(headline, problems)


def _unreadable_here(spec: JobSpec) -> list[str]:
    """``field: reason`` for each object-store input this machine cannot read."""
    from shipyard.core.workloads import data_fields
    from shipyard.data.files import expand

    name = spec.workload_name
    lines = []
    for found in data_fields(name, spec.to_dict()["spec"][name]):
        if found.output or "://" not in found.path or "${" in found.path:
            continue
        try:
            expand(found.path, found.storage_options)
        except InputUnreachableError as err:
            lines.append(f"spec.{name}.{found.field}: {err}")
        except InputDataError:
            pass  # not there: the checks say so, at submission
    return lines
