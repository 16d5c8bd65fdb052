"""A pipeline run's ``result.json`` and report, from its stages.

``result.json``, written once the run has ended (whatever its end: ``state`` says which),
follows ``shipyard.result_schema()`` as a job's does::

    {"job_id", "attempt": 1, "pipeline", "workload": "pipeline", "state", "reason",
     "order": [...],
     "stages": {name: {"state", "cached", "job_id", "reused_from", "seconds", "workload",
                       "output", "reason", "result": <the stage job's result.json>,
                       "report": "../<stage job id>/report/index.html"}},
     "outputs": [...every stage's outputs], "phases": [{"phase": stage, "seconds"}],
     "artifacts": {"<stage>-<name>": path, ...every stage's artifacts},
     "figures": [...every stage's figures, named <stage>-<figure>],
     "report": "report/index.html"}

The report page has the stages (state, cached, wall time), each stage's result tables
and figures, and links to the stages' own pages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.atomic import write_json_atomic
from shipyard.core.states import JobState
from shipyard.core.store import JobStore
from shipyard.pipelines import store as stage_store
from shipyard.report.page import REPORT_PATH, ReportData, write_report

if TYPE_CHECKING:
    from shipyard.core.home import Home
    from shipyard.spec.pipeline import PipelineSpec

__all__ = ["pipeline_result", "write_pipeline_results"]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pipeline_result(home: Home, pipeline_id: str, spec: PipelineSpec, state: str,
                    reason: str | None, sample_dir: Path | None = None) -> dict[str, Any]:
    """The pipeline's ``result.json`` document (see the module docstring)."""
    store = JobStore(home.db)
    declared = spec.outputs(sample_dir)
    stages: dict[str, Any] = {}
    outputs: list[str] = []
    artifacts: dict[str, str] = {}
    figures: list[dict[str, Any]] = []
    phases: list[dict[str, Any]] = []
    for stage in stage_store.stages(store, pipeline_id):
        entry = stage.to_status()
        for key in ("name", "position", "needs"):
            entry.pop(key)
        entry["needs"] = stage.needs
        entry["output"] = declared.get(stage.name)
        result = None
        if stage.job_id:
            prefix = Path("..") / stage.job_id
            entry["report"] = (prefix / REPORT_PATH).as_posix()
            if stage.state == "SUCCEEDED":
                result = _read_json(home.run_dir(stage.job_id).result)
            for figure in (result or {}).get("figures") or []:
                figures.append({**figure, "name": f"{stage.name}-{figure['name']}",
                                "title": f"{stage.name}: {figure.get('title', '')}",
                                "path": (prefix / figure["path"]).as_posix()})
        entry["result"] = result
        outputs.extend(o for o in (result or {}).get("outputs") or [] if o not in outputs)
        # named as the figures are, after their stage
        artifacts.update({f"{stage.name}-{name}": path
                          for name, path in ((result or {}).get("artifacts") or {}).items()})
        stages[stage.name] = entry
        phases.append({"phase": stage.name, "seconds": stage.seconds or 0.0})
    return {"job_id": pipeline_id, "attempt": store.get(pipeline_id).attempt,
            "pipeline": spec.name, "workload": "pipeline", "state": state, "reason": reason,
            "order": spec.order, "stages": stages, "outputs": outputs, "phases": phases,
            "artifacts": artifacts, "figures": figures, "report": REPORT_PATH.as_posix()}


def write_pipeline_results(home: Home, pipeline_id: str, spec: PipelineSpec, state: str,
                           reason: str | None, sample_dir: Path | None = None) -> Path:
    """Write ``report/index.html`` into the pipeline's run directory, and ``result.json``
    once the run has ended (a page asked for while it runs shows how far it got; its
    result is how it ended); return the page's path."""
    run_dir = home.run_dir(pipeline_id)
    result = pipeline_result(home, pipeline_id, spec, state, reason, sample_dir)
    if JobState(state).is_terminal():
        write_json_atomic(run_dir.result, result)
    record = JobStore(home.db).get(pipeline_id)
    try:
        spec_text = run_dir.spec.read_text()
    except OSError:
        spec_text = ""
    return write_report(ReportData(
        run_dir=run_dir, job_id=pipeline_id, name=spec.name, state=state,
        attempt=record.attempt,
        workload="pipeline", reason=reason, cluster=record.cluster,
        started_at=record.started_at or record.created_at,
        finished_at=record.finished_at, spec_text=spec_text, result=result,
        phases=result["phases"], figures=result["figures"]))
