"""Object-store inputs the submitting machine cannot read (no credentials for the bucket:
the cluster's pods have their own, e.g. workload identity). `render` reads no data;
`validate`/`submit` say in one line per input that the data is checked where the job
runs, and the runner does check it there."""

from __future__ import annotations

import pytest
import yaml

from shipyard.runtime.runner import run_attempt
from helpers import ROOT, shipyard

S3_INPUTS = ["--set", "spec.dataframe.inputs.main.path=s3://bucket/customers.parquet",
             "--set", "spec.dataframe.inputs.regions.path=s3://bucket/regions.parquet"]


@pytest.fixture
def no_aws_credentials(monkeypatch):
    """This machine as a laptop without the data bucket's credentials."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role either


def test_render_reads_no_data(home, no_aws_credentials):
    proc = shipyard("render", "jobs/churn-prep.yaml", "--cluster", "kubernetes", *S3_INPUTS,
                    cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    config_map = next(d for d in yaml.safe_load_all(proc.stdout) if d["kind"] == "ConfigMap")
    spec = yaml.safe_load(config_map["data"]["spec.yaml"])
    assert spec["spec"]["dataframe"]["inputs"]["main"]["path"] == "s3://bucket/customers.parquet"
    assert "NoCredentialsError" not in proc.stderr  # nothing tried to read it


def test_validate_says_which_inputs_are_checked_where_the_job_runs(home, no_aws_credentials):
    proc = shipyard("validate", "jobs/churn-prep.yaml", *S3_INPUTS, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) == 2
    assert lines[0].startswith("warning: spec.dataframe.inputs.main.path: "
                               "s3://bucket/customers.parquet: cannot be read "
                               "(NoCredentialsError")
    assert all(line.endswith("its data is checked where the job runs") for line in lines)


def test_the_runner_checks_what_the_submitter_could_not(tmp_path, no_aws_credentials):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "spec.yaml").write_text(yaml.safe_dump({
        "apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "remote"},
        "spec": {"dataframe": {"inputs": {"main": {"path": "s3://bucket/customers.parquet"}},
                               "output": {"path": str(tmp_path / "out.parquet")}}}}))
    outcome = run_attempt(run_dir, "remote-1", 1, dask_address=None, db=None)
    assert (outcome["status"], outcome["kind"]) == ("failed", "input")
    assert "spec.dataframe.inputs.main.path: s3://bucket/customers.parquet: cannot be read" \
        in outcome["reason"]
    assert not (tmp_path / "out.parquet").exists()
