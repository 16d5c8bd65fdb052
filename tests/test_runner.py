"""The runner (shipyard.runtime.runner) checks a job's data once, where the job runs: the
data may have changed since submission, or could not be read from the submitting
machine. Each test runs one attempt in this process, as every backend's runner does."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import shipyard.data.checks
from shipyard.runtime.runner import run_attempt

pytestmark = pytest.mark.cluster  # the passing attempt starts a LocalCluster


@pytest.fixture
def counted_checks(monkeypatch):
    """How often the dataframe workload's data checks run (the registry resolves them by
    name on each use, so the wrapper is what the runner calls)."""
    calls = []
    real = shipyard.data.checks.check_workload

    def check_workload(block):
        calls.append(block)
        return real(block)

    monkeypatch.setattr(shipyard.data.checks, "check_workload", check_workload)
    return calls


def run_dir_with(tmp_path, query: str):
    data = tmp_path / "in.parquet"
    pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]}).to_parquet(data)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # written as a backend writes it after submission; the data is not looked at here
    (run_dir / "spec.yaml").write_text(yaml.safe_dump({
        "apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "checked"},
        "spec": {"resources": {"workers": 1, "threads_per_worker": 1},
                 "report": {"figures": False},
                 "dataframe": {"inputs": {"main": {"path": str(data)}},
                               "steps": [{"query": query}],
                               "output": {"path": str(tmp_path / "out.parquet")}}}}))
    return run_dir


def test_the_data_is_checked_once_per_attempt(tmp_path, counted_checks):
    outcome = run_attempt(run_dir_with(tmp_path, "a > 1"), "checked-1", 1,
                          dask_address=None, db=None)
    assert outcome["status"] == "succeeded", outcome
    assert len(counted_checks) == 1
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 2


def test_data_that_no_longer_fits_the_spec_fails_as_bad_input(tmp_path, counted_checks):
    outcome = run_attempt(run_dir_with(tmp_path, "c > 1"), "checked-1", 1,
                          dask_address=None, db=None)
    assert (outcome["status"], outcome["kind"]) == ("failed", "input")
    assert "does not fit its inputs" in outcome["reason"] and "'c'" in outcome["reason"]
    assert len(counted_checks) == 1
    assert not (tmp_path / "out.parquet").exists()
