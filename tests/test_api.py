"""The Python API mirrors the CLI: load, submit, run, Job.status/wait/logs/cancel/result."""

from __future__ import annotations

import pytest

import shipyard
from shipyard.core.errors import JobFailedError, JobNotFoundError, SpecError
from helpers import job_doc


@pytest.mark.cluster
def test_submit_wait_result(home):
    job = shipyard.submit(job_doc("jobfuncs:echo", {"value": "hi"}), overrides={"spec.retries": 1})
    assert repr(job) == f"Job({job.id!r})"
    record = job.wait(timeout=60)
    assert record.state == shipyard.JobState.SUCCEEDED and record.max_attempts == 2
    assert job.result()["value"]["value"] == "hi"
    assert job.run_dir == home.resolve() / "runs" / job.id


@pytest.mark.cluster
def test_a_loaded_spec_can_be_submitted_with_overrides(home, write_spec):
    spec = shipyard.load(write_spec("jobfuncs:echo"))
    job = shipyard.run(spec, overrides=["spec.python.params.value=3"])
    assert job.result()["value"]["value"] == 3


@pytest.mark.cluster
def test_result_of_a_failed_job_raises(home):
    job = shipyard.run(job_doc("jobfuncs:boom"))
    with pytest.raises(JobFailedError, match="ended FAILED"):
        job.result()


@pytest.mark.cluster
def test_wait_can_time_out(home):
    job = shipyard.submit(job_doc("jobfuncs:sleepy", {"seconds": 30}))
    with pytest.raises(TimeoutError, match="still"):
        job.wait(timeout=0.2)  # not a deadline: the timeout is what is tested
    assert job.cancel().state == shipyard.JobState.CANCELLED


@pytest.mark.cluster
def test_list_and_get(home):
    job = shipyard.run(job_doc("jobfuncs:echo"))
    assert [r.id for r in shipyard.list_jobs()] == [job.id]
    assert shipyard.get_job(job.id).status().state == "SUCCEEDED"
    with pytest.raises(JobNotFoundError):
        shipyard.get_job("missing-20260101-000000-0000")


def test_invalid_specs_raise_spec_errors(home):
    with pytest.raises(SpecError) as err:
        shipyard.submit(job_doc("jobfuncs:echo", name="UPPER"))
    assert err.value.exit_code == 2
    assert err.value.problems[0].startswith("metadata.name:")
