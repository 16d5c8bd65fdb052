"""Helpers the tests import: spec documents, the real CLI, polling."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def job_doc(entrypoint: str, params: dict | None = None, name: str = "test-job",
            **spec: Any) -> dict:
    """A python-workload job spec as a dict."""
    return {
        "apiVersion": "shipyard/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {**spec, "python": {"entrypoint": entrypoint, "params": params or {}}},
    }


def shipyard(*args: str, timeout: float = 120, check: bool = False,
             env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `shipyard` command (as `python -m shipyard`) and capture its output."""
    proc = subprocess.run([sys.executable, "-m", "shipyard", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"shipyard {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def shipyard_json(*args: str, **kwargs: Any) -> Any:
    proc = shipyard(*args, "--json", **kwargs)
    return json.loads(proc.stdout)


def wait_until(predicate: Callable[[], Any], timeout: float = 120.0, interval: float = 0.05,
               what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``.

    The deadline only stops a hung test (tests/test_suite_rules.py): it is never what a
    test asserts, so it is generous enough for a busy machine."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pipeline_doc(*stages: dict, name: str = "pipe", **spec: Any) -> dict:
    """A ``kind: Pipeline`` spec as a dict."""
    return {"apiVersion": "shipyard/v1", "kind": "Pipeline", "metadata": {"name": name},
            "spec": {**spec, "stages": list(stages)}}


def python_stage(name: str, entrypoint: str, needs=(), declared: str | None = None,
                 **params: Any) -> dict:
    """A pipeline stage running a python workload; ``declared`` is its ``output:`` (what
    ``${stages.NAME.output}`` means)."""
    stage: dict[str, Any] = {"name": name, "python": {"entrypoint": entrypoint,
                                                      "params": params}}
    if needs:
        stage["needs"] = list(needs)
    if declared is not None:
        stage["output"] = declared
    return stage
