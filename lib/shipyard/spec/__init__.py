"""Job and pipeline specs: the models (:mod:`~shipyard.spec.job`,
:mod:`~shipyard.spec.pipeline`) and :func:`load` (:mod:`~shipyard.spec.loading`), which
reads either by its ``kind``."""

from shipyard.spec.job import (API_VERSION, WORKLOADS, JobBody, JobSpec, Metadata,
                               PythonWorkload, ReportSettings, Resources, SpecDocument)
from shipyard.spec.loading import load
from shipyard.spec.pipeline import PipelineSpec

__all__ = ["API_VERSION", "WORKLOADS", "JobBody", "JobSpec", "Metadata", "PythonWorkload",
           "ReportSettings", "Resources", "SpecDocument", "PipelineSpec", "load"]
