"""Runs that ended badly, as a user meets them on the CLI: a failing pipeline stage's
traceback on `run`, the result of a failed or cancelled pipeline (and of its failed
stage's job), and the status page of a job that was cancelled mid-phase."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

import shipyard
from shipyard.core.errors import JobFailedError
from helpers import pipeline_doc, python_stage, shipyard as cli, shipyard_json, wait_until

pytestmark = pytest.mark.cluster

#: The stages' functions: one keeps files with its run, one fails a frame deep.
STAGES = '''
def keep(ctx):
    (ctx.artifacts_dir / "model.txt").write_text("weights")
    (ctx.artifacts_dir / "plots").mkdir()
    (ctx.artifacts_dir / "plots" / "loss.csv").write_text("1,0.5\\n")
    return {"kept": 2}


def boom(ctx):
    def inner():
        raise ValueError("stage broke")
    inner()
'''


def failing_pipeline(tmp_path: Path) -> Path:
    """``keep`` succeeds and keeps two files, then ``bad`` raises."""
    (tmp_path / "stagefuncs.py").write_text(STAGES)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline_doc(
        python_stage("keep", "stagefuncs:keep"),
        python_stage("bad", "stagefuncs:boom", needs=["keep"]))))
    return path


def test_run_folds_a_failing_stages_traceback_as_for_a_job(tmp_path, home):
    proc = cli("run", str(failing_pipeline(tmp_path)))
    assert proc.returncode == 1, proc.stderr
    pipeline_id = re.search(r"submitted (\S+) ", proc.stderr).group(1)
    shown = proc.stdout.splitlines()
    assert f"[bad]   (traceback folded: `shipyard logs {pipeline_id}` shows it in full)" \
        in shown
    assert "[bad] ValueError: stage broke" in shown
    frames = [line for line in shown if line.startswith("[bad]  ") and "folded" not in line]
    assert frames == []
    assert "[bad] Traceback (most recent call last):" not in shown
    # the log itself keeps the whole traceback
    logged = cli("logs", pipeline_id, check=True).stdout.splitlines()
    assert "[bad] Traceback (most recent call last):" in logged
    assert any(line.startswith('[bad]   File "') and line.endswith(", in inner")
               for line in logged)


def test_a_failed_pipeline_has_a_result_that_says_how_each_stage_ended(tmp_path, home):
    proc = cli("run", str(failing_pipeline(tmp_path)), "--json")
    assert proc.returncode == 1, proc.stderr
    status = json.loads(proc.stdout)
    pipeline_id = status["id"]
    shown = cli("result", pipeline_id)
    assert shown.returncode == 1
    assert (f"pipeline {pipeline_id} ended FAILED: stage 'bad' failed: ValueError: stage "
            "broke") in shown.stderr
    result = json.loads(shown.stdout)
    assert status["result"] == result  # `run --json` has it too
    jsonschema.validate(result, shipyard.result_schema())
    assert (result["workload"], result["state"], result["attempt"]) == ("pipeline", "FAILED", 1)
    keep, bad = result["stages"]["keep"], result["stages"]["bad"]
    assert keep["state"] == "SUCCEEDED" and keep["result"]["value"] == {"kept": 2}
    kept = home.resolve() / "runs" / keep["job_id"] / "artifacts"
    assert keep["result"]["artifacts"] == {"model.txt": str(kept / "model.txt"),
                                           "plots/loss.csv": str(kept / "plots" / "loss.csv")}
    assert result["artifacts"] == {"keep-model.txt": str(kept / "model.txt"),
                                   "keep-plots/loss.csv": str(kept / "plots" / "loss.csv")}
    assert bad["state"] == "FAILED" and bad["result"] is None
    assert bad["reason"] == "ValueError: stage broke"

    # the failed stage is a job: a job that failed has no result, on the CLI or in Python
    stage = cli("result", bad["job_id"])
    assert stage.returncode == 1 and stage.stdout == ""
    assert f"job {bad['job_id']} ended FAILED (ValueError: stage broke); it has no result" \
        in stage.stderr
    job = shipyard.get_job(pipeline_id)
    with pytest.raises(JobFailedError, match=f"shipyard result {pipeline_id}"):
        job.result()
    assert job.result(failed=True) == result


def test_a_cancelled_pipeline_has_its_result_once_it_ended_and_none_before(tmp_path, home):
    job = shipyard.submit(pipeline_doc(python_stage("nap", "jobfuncs:sleepy", seconds=120)))
    wait_until(lambda: job.stages()[0]["state"] == "RUNNING", timeout=120,
               what="the stage to run")
    assert job.report().is_file()  # a page of how far it got ...
    assert not (job.run_dir / "result.json").exists()  # ... but no result of a running run
    assert job.cancel().state == "CANCELLED"
    result = job.result(failed=True)
    assert result["state"] == "CANCELLED"
    assert result["stages"]["nap"]["state"] == "CANCELLED"


def test_status_of_a_cancelled_job_shows_how_far_it_got_but_no_eta(home, write_spec):
    spec = write_spec("jobfuncs:progress_steps", {"steps": 200, "pause": 0.3})
    job_id = cli("submit", str(spec), check=True).stdout.strip()
    job = shipyard.get_job(job_id)
    wait_until(lambda: "eta_seconds" in (job.status().progress or {}), timeout=120,
               interval=0.2, what="an ETA in the job's progress")
    assert ", ETA " in cli("status", job_id, check=True).stdout  # while it runs
    cli("cancel", job_id, check=True)
    page = cli("status", job_id, check=True).stdout
    assert "state:     CANCELLED" in page
    assert re.search(r"^progress:  stepping \d+/200$", page, re.MULTILINE), page
    assert "ETA" not in page
    progress = shipyard_json("status", job_id)["progress"]  # the same in --json
    assert progress["phase"] == "stepping" and "eta_seconds" not in progress
