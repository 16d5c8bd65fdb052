"""Job and pipeline specs: the models (:mod:`~shipyard.spec.job`,
:mod:`~shipyard.spec.pipeline`), :func:`load` (:mod:`~shipyard.spec.loading`), which
reads either by its ``kind``, and what loading needs: YAML
(:mod:`~shipyard.spec.yamlio`), ``--set`` overrides (:mod:`~shipyard.spec.overrides`),
error messages (:mod:`~shipyard.spec.errors`), "did you mean"
(:mod:`~shipyard.spec.suggest`) and ``module:function`` references
(:mod:`~shipyard.spec.entrypoints`).

The models are imported on first use of a name below, so a helper module
(``shipyard.spec.yamlio``) is imported without pydantic and the workloads' models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    **dict.fromkeys(["API_VERSION", "WORKLOADS", "JobBody", "JobSpec", "Metadata",
                     "PythonWorkload", "ReportSettings", "Resources", "SpecDocument"],
                    "shipyard.spec.job"),
    "load": "shipyard.spec.loading",
    "PipelineSpec": "shipyard.spec.pipeline",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from shipyard.spec.job import (API_VERSION, WORKLOADS, JobBody, JobSpec, Metadata,
                                   PythonWorkload, ReportSettings, Resources, SpecDocument)
    from shipyard.spec.loading import load
    from shipyard.spec.pipeline import PipelineSpec


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'shipyard.spec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
