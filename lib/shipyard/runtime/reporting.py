"""Write a job's HTML report from what its run directory holds.

The runner calls :func:`write_job_report` when an attempt ends (succeeded or not);
``shipyard report ID`` calls it again for a job whose runner could not (killed, out of
memory, lost), and after the job ended, so the page shows the job's final state.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from shipyard.core.home import RunDir, read_outcome
from shipyard.report.figures import FIGURE_DIR
from shipyard.report.page import LOG_TAIL_LINES, REPORT_PATH, ReportData, write_report

__all__ = ["write_job_report", "report_path"]


def report_path(run_dir: Path) -> Path:
    """``<run dir>/report/index.html``."""
    return Path(run_dir) / REPORT_PATH


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> list[str] | None:
    if path is None:
        return None
    try:
        with open(path, errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except OSError:
        return None


def _spec_facts(spec_text: str) -> tuple[str | None, str | None]:
    """``(metadata.name, workload)`` of the stored spec (it was validated at submission)."""
    from shipyard.spec import WORKLOADS

    try:
        spec = yaml.safe_load(spec_text) or {}
        body = spec.get("spec") or {}
        workload = next((k for k in WORKLOADS if k in body), None)
        return (spec.get("metadata") or {}).get("name"), workload
    except (yaml.YAMLError, AttributeError):
        return None, None


def write_job_report(run_dir: Path, *, job_id: str, state: str, attempt: int,
                     reason: str | None = None, cluster: str | None = None,
                     started_at: float | None = None, finished_at: float | None = None,
                     log_path: Path | None = None) -> Path:
    """Gather the run directory's spec, result, figures and the attempt's outcome (its
    phase timings, where there is no result) into the report page.

    Parameters
    ----------
    run_dir : Path
        The job's run directory.
    job_id, state, attempt, reason, cluster, started_at, finished_at
        What the page's heading says.
    log_path : Path, optional
        The attempt's log; its tail is shown when the job did not succeed.

    Returns
    -------
    Path
        The page.
    """
    run_dir = RunDir(run_dir)
    try:
        spec_text = run_dir.spec.read_text()
    except OSError:
        spec_text = ""
    name, workload = _spec_facts(spec_text)
    succeeded = state == "SUCCEEDED"
    result = _read_json(run_dir.result) if succeeded else None
    figures = (result or {}).get("figures")
    if figures is None:  # no result: whatever the attempt drew before it failed
        figures = [{"name": p.stem, "title": p.stem.replace("_", " "),
                    "path": (FIGURE_DIR / p.name).as_posix()}
                   for p in sorted((run_dir / FIGURE_DIR).glob("*.png"))]
    tail = None if succeeded else _tail(log_path)
    hint = None
    if not succeeded:
        hint = f"The whole log: shipyard logs {job_id}"
    data = ReportData(
        run_dir=run_dir, job_id=job_id, name=name or job_id, state=state, attempt=attempt,
        workload=(result or {}).get("workload") or workload, reason=reason, cluster=cluster,
        started_at=started_at, finished_at=finished_at, spec_text=spec_text, result=result,
        phases=(result or {}).get("phases") or (read_outcome(run_dir, attempt) or {}).get(
            "phases") or [], figures=figures,
        log_tail=tail, log_hint=hint)
    return write_report(data)
