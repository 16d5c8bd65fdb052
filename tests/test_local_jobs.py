"""The local backend end to end: real supervisors and runners, real process trees."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

import shipyard
from shipyard.core.home import Home
from shipyard.core.states import JobState
from shipyard.core.store import JobStore
from helpers import job_doc, shipyard as cli, shipyard_json, wait_until

pytestmark = pytest.mark.cluster  # supervisors, runners and their process trees


def store(home) -> JobStore:
    return JobStore(home / "jobs.db")


def alive(pids: list[int]) -> list[int]:
    """The pids that still exist and are not zombies."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def running_tree(home, job_id, min_processes=1) -> list[int]:
    """Wait until the job's attempt runs, then return the pids of its process tree."""
    def tree():
        record = store(home).get(job_id)
        if record.runner_pid is None:
            return None
        try:
            root = psutil.Process(record.runner_pid)
            pids = [root.pid, *(p.pid for p in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return None
        return pids if len(pids) >= min_processes else None

    return wait_until(tree, timeout=60, what=f"{job_id} to have {min_processes} processes")


def test_a_job_succeeds_with_its_value_outputs_and_progress(home):
    job = shipyard.run(job_doc("jobfuncs:progress_steps", {"steps": 2, "pause": 0.01}))
    record = job.status()
    assert record.state is JobState.SUCCEEDED and record.reason == "completed"
    assert record.progress["phase"] == "stepping" and record.progress["done"] == 2
    result = job.result()
    assert result["value"] == {"steps": 2} and result["outputs"] == []
    assert "step 2" in "\n".join(job.logs())
    assert (job.run_dir / "spec.yaml").exists()
    assert (job.run_dir / "logs" / "attempt-1.log").exists()


def test_numpy_values_are_returned_as_json(home):
    job = shipyard.run(job_doc("jobfuncs:returns_numpy"))
    assert job.result()["value"] == {"mean": 2.5, "values": [0, 1, 2]}


def test_a_value_that_is_not_json_fails_the_job_clearly(home):
    job = shipyard.run(job_doc("jobfuncs:not_json"))
    record = job.status()
    assert record.state is JobState.FAILED
    assert "jobfuncs:not_json returned a value that a builtins.object is not JSON-serialisable" \
        in record.reason


def test_a_raising_entrypoint_fails_with_a_one_line_reason(home, write_spec):
    proc = cli("run", str(write_spec("jobfuncs:boom", {"message": "the disk is full"})))
    assert proc.returncode == 1
    job_id = json.loads(cli("list", "--json").stdout)[0]["id"]
    record = store(home).get(job_id)
    assert record.state is JobState.FAILED
    assert record.reason == "ValueError: the disk is full"
    assert record.failure_kind == "error"
    # the traceback is in the attempt log ...
    log = (home / "runs" / job_id / "logs" / "attempt-1.log").read_text()
    assert "Traceback (most recent call last)" in log and "raise ValueError(message)" in log
    # ... and not on the user's screen, which names the failure and where to look
    screen = proc.stdout + proc.stderr
    assert "Traceback" not in screen
    assert "ValueError: the disk is full" in screen
    assert f"shipyard logs {job_id}" in screen


def test_retries_run_each_attempt_with_its_own_log(home, tmp_path):
    counter = tmp_path / "calls"
    job = shipyard.run(job_doc("jobfuncs:flaky", {"counter": str(counter), "failures": 2},
                               retries=2))
    record = job.status()
    assert record.state is JobState.SUCCEEDED and record.attempt == 3
    assert job.result()["value"] == {"calls": 3}
    for attempt in (1, 2, 3):
        log = (job.run_dir / "logs" / f"attempt-{attempt}.log").read_text()
        assert f"flaky: call {attempt} in attempt {attempt}" in log
    events = [(e.state, e.attempt) for e in job.events() if e.state]
    assert events == [("PENDING", 1), ("RUNNING", 1), ("PENDING", 2), ("RUNNING", 2),
                      ("PENDING", 3), ("RUNNING", 3), ("SUCCEEDED", 3)]
    retry_reasons = [e.message for e in job.events() if e.state == "PENDING"][1:]
    assert retry_reasons[0] == "attempt 1 failed: RuntimeError: planned failure 1 of 2"
    logs = list(job.logs())
    assert "--- attempt 2 ---" in logs and "--- attempt 3 ---" in logs


def test_retries_run_out(home, tmp_path):
    job = shipyard.run(job_doc("jobfuncs:flaky", {"counter": str(tmp_path / "c"), "failures": 5},
                               retries=1))
    record = job.status()
    assert (record.state, record.attempt) == (JobState.FAILED, 2)
    assert record.reason == "RuntimeError: planned failure 2 of 5"


def test_bad_input_fails_at_once_and_exits_2(home, write_spec):
    proc = cli("run", str(write_spec("jobfuncs:bad_input", retries=2)))
    assert proc.returncode == 2
    assert "data/missing.csv: no such file" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    (status,) = shipyard_json("list")
    assert status["state"] == "FAILED" and status["attempt"] == 1  # not retried
    assert status["failure_kind"] == "input"


def test_timeout_kills_the_attempt_and_everything_it_started(home):
    job = shipyard.submit(job_doc("jobfuncs:sleepy", {"seconds": 120, "use_dask": True},
                                  timeout="15s"))
    pids = running_tree(home, job.id, min_processes=3)  # runner + nannies/workers
    record = job.wait(timeout=60)
    assert record.state is JobState.FAILED and record.reason == "timeout"
    assert record.failure_kind == "timeout"
    # the job would sleep 120 s: a tree gone well before that was ended by the timeout
    assert wait_until(lambda: not alive(pids), timeout=60, what="the attempt's processes to end")
    assert any("ran past 15s" in (e.message or "") for e in job.events())


def test_cancel_ends_the_whole_process_tree(home):
    """How long a cancel takes is a figure of tests/bench/bench_cancel.py; here: what it
    ends, and the order (the attempt's processes are gone before CANCELLED is recorded)."""
    job = shipyard.submit(job_doc("jobfuncs:sleepy", {"seconds": 120, "use_dask": True}))
    wait_until(lambda: (job.status().progress or {}).get("phase") == "sleeping", timeout=60,
               what="the job to start its cluster")
    pids = running_tree(home, job.id, min_processes=3)
    supervisor = store(home).get(job.id).supervisor_pid
    proc = cli("cancel", job.id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{job.id} CANCELLED"
    assert not alive(pids)  # the supervisor records CANCELLED once the tree has ended
    # the job would sleep 120 s: a supervisor gone well before that was stopped by cancel
    wait_until(lambda: not alive([supervisor]), timeout=60, what="the supervisor to end")
    record = job.status()
    assert record.state is JobState.CANCELLED and record.reason == "cancelled"
    # a terminal state never changes: cancelling again is a no-op
    again = cli("cancel", job.id)
    assert again.returncode == 0 and "already ended CANCELLED" in again.stdout


def test_cancel_before_the_attempt_starts(home):
    job = shipyard.submit(job_doc("jobfuncs:sleepy", {"seconds": 60}))
    supervisor = store(home).get(job.id).supervisor_pid
    record = job.cancel()
    assert record.state is JobState.CANCELLED
    # once the supervisor has ended, nothing else can move the job: it stayed CANCELLED
    wait_until(lambda: not alive([supervisor]), timeout=60, what="the supervisor to end")
    assert job.status().state is JobState.CANCELLED


def test_a_killed_supervisor_leaves_a_failed_job_and_no_orphans(home):
    job = shipyard.submit(job_doc("jobfuncs:sleepy", {"seconds": 120}))
    pids = running_tree(home, job.id)
    supervisor = store(home).get(job.id).supervisor_pid
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not alive([supervisor]), timeout=60)
    status = shipyard_json("status", job.id)  # the next read notices
    assert status["state"] == "FAILED" and status["reason"] == "supervisor lost"
    assert wait_until(lambda: not alive(pids), timeout=120, what="the orphaned attempt to end")
    assert store(home).get(job.id).state is JobState.FAILED


def test_two_clis_submitting_20_jobs_at_once_lose_nothing(home, write_spec):
    spec = write_spec("jobfuncs:echo", {"value": 1})
    loop = f"for i in $(seq 10); do {sys.executable} -m shipyard submit {spec} || exit 1; done"
    procs = [subprocess.Popen(["bash", "-c", loop], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    printed = [line for proc in procs for line in proc.communicate(timeout=300)[0].split()]
    assert all(proc.returncode == 0 for proc in procs)
    assert len(printed) == len(set(printed)) == 20
    records = store(home).list()
    assert sorted(r.id for r in records) == sorted(printed)
    for job_id in printed:
        events = store(home).events(job_id)
        assert [e.message for e in events].count("submitted") == 1
    for job_id in printed:
        assert shipyard.get_job(job_id).wait(timeout=120).state is JobState.SUCCEEDED


def test_home_layout(home):
    job = shipyard.run(job_doc("jobfuncs:echo"))
    layout = Home.from_env()
    assert layout.root == home.resolve()
    assert (home / "jobs.db").exists()
    assert {p.name for p in (home / "runs" / job.id).iterdir()} == {"spec.yaml", "logs",
                                                                    "result.json", "report"}
    assert {p.name for p in (home / "runs" / job.id / "logs").iterdir()} == {
        "supervisor.log", "attempt-1.log", "attempt-1.outcome.json"}
