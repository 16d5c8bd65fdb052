"""The CLI contract of DESIGN.md: commands, exit codes, --json shapes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import shipyard
from helpers import job_doc, shipyard as cli, shipyard_json, wait_until

STATUS_KEYS = {"id", "name", "state", "reason", "attempt", "cluster", "created_at",
               "started_at", "finished_at", "progress"}


def test_version_and_help():
    assert cli("--version").stdout.startswith("shipyard, version ")
    helptext = cli("--help").stdout
    for command in ("run", "submit", "status", "list", "wait", "logs", "cancel", "result",
                    "validate", "cluster"):
        assert command in helptext


def test_validate_accepts_a_good_spec(home, write_spec):
    proc = cli("validate", str(write_spec("jobfuncs:echo")))
    assert proc.returncode == 0 and "valid python job 'test-job'" in proc.stdout
    assert not home.exists()


@pytest.mark.cluster
def test_submit_prints_only_the_id(home, write_spec):
    proc = cli("submit", str(write_spec("jobfuncs:echo")), check=True)
    job_id = proc.stdout.strip()
    assert proc.stdout == job_id + "\n" and job_id.startswith("test-job-")
    assert shipyard.get_job(job_id).wait(timeout=60).state == "SUCCEEDED"


@pytest.mark.cluster
def test_run_json_prints_one_document_with_the_result(home, write_spec):
    proc = cli("run", str(write_spec("jobfuncs:echo", {"value": [1, 2]})), "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)  # the whole stdout is one JSON document
    assert STATUS_KEYS | {"result"} <= set(document)
    assert document["state"] == "SUCCEEDED"
    assert document["result"]["value"]["value"] == [1, 2]
    assert document["result"]["outputs"] == []


@pytest.mark.cluster
def test_run_streams_the_log_and_says_where_things_are(home, write_spec):
    proc = cli("run", str(write_spec("jobfuncs:progress_steps", {"steps": 2, "pause": 0})))
    assert proc.returncode == 0
    assert "step 1" in proc.stdout and "step 2" in proc.stdout
    job_id = shipyard_json("list")[0]["id"]
    assert f"job {job_id} SUCCEEDED" in proc.stderr
    assert f"runs/{job_id}/result.json" in proc.stderr
    assert f"runs/{job_id}/logs/" in proc.stderr


@pytest.mark.cluster
def test_status_and_list_json_shapes(home, write_spec):
    job_id = cli("submit", str(write_spec("jobfuncs:echo")), check=True).stdout.strip()
    cli("wait", job_id, check=True)
    status = shipyard_json("status", job_id)
    assert STATUS_KEYS <= set(status)
    assert status["id"] == job_id and status["state"] == "SUCCEEDED" and status["attempt"] == 1
    assert status["cluster"] == "local"
    for key in ("created_at", "started_at", "finished_at"):
        assert status[key].endswith("+00:00")
    listing = shipyard_json("list")
    assert listing == [status]


@pytest.mark.cluster
def test_human_status_shows_the_events(home, write_spec):
    job_id = cli("submit", str(write_spec("jobfuncs:echo")), check=True).stdout.strip()
    cli("wait", job_id, check=True)
    page = cli("status", job_id).stdout
    assert f"id:        {job_id}" in page and "SUCCEEDED (attempt 1 of 1)" in page
    assert "submitted" in page and "attempt 1 started" in page
    assert job_id in cli("list").stdout


@pytest.mark.cluster
def test_progress_reaches_status_json_while_running(home, write_spec):
    spec = write_spec("jobfuncs:progress_steps", {"steps": 20, "pause": 0.25})
    job_id = cli("submit", str(spec), check=True).stdout.strip()

    def midway():
        status = shipyard_json("status", job_id)
        progress = status["progress"] or {}
        return status["state"] == "RUNNING" and progress.get("phase") == "stepping" and \
            0 < progress.get("done", 0) < 20 and progress["total"] == 20

    wait_until(midway, timeout=120, what="progress in status --json")
    cli("cancel", job_id, check=True)


@pytest.mark.cluster
def test_logs_follow_ends_with_the_job(home, write_spec):
    spec = write_spec("jobfuncs:progress_steps", {"steps": 4, "pause": 0.3})
    job_id = cli("submit", str(spec), check=True).stdout.strip()
    proc = cli("logs", job_id, "--follow", timeout=60)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert [line for line in lines if line.startswith("step ")] == [f"step {i}" for i in
                                                                      range(1, 5)]
    assert shipyard.get_job(job_id).status().state.is_terminal()


@pytest.mark.cluster
def test_wait_exit_codes(home, write_spec):
    ok = cli("submit", str(write_spec("jobfuncs:echo")), check=True).stdout.strip()
    bad = cli("submit", str(write_spec("jobfuncs:boom")), check=True).stdout.strip()
    assert cli("wait", ok).returncode == 0
    failed = cli("wait", bad, "--json")
    assert failed.returncode == 1 and json.loads(failed.stdout)["reason"] == "ValueError: boom"
    slow = cli("submit", str(write_spec("jobfuncs:sleepy", {"seconds": 30})),
               check=True).stdout.strip()
    timed_out = cli("wait", slow, "--timeout", "0.5")
    assert timed_out.returncode == 124 and "still" in timed_out.stderr
    cli("cancel", slow, check=True)
    assert cli("wait", slow).returncode == 1


@pytest.mark.cluster
def test_result_of_unfinished_and_failed_jobs(home, write_spec):
    bad = cli("submit", str(write_spec("jobfuncs:boom")), check=True).stdout.strip()
    slow = cli("submit", str(write_spec("jobfuncs:sleepy", {"seconds": 30})),
               check=True).stdout.strip()
    cli("wait", bad)
    failed = cli("result", bad)
    assert failed.returncode == 1 and "ended FAILED (ValueError: boom)" in failed.stderr
    running = cli("result", slow)
    assert running.returncode == 2 and "has no result yet" in running.stderr
    cli("cancel", slow, check=True)


def test_unknown_job_ids_exit_2(home):
    for command in ("status", "logs", "cancel", "result", "wait"):
        proc = cli(command, "nope-20260101-000000-abcd")
        assert proc.returncode == 2 and "no job with id 'nope-20260101-000000-abcd'" in proc.stderr


def test_bad_arguments_exit_2(home, write_spec):
    spec = str(write_spec("jobfuncs:echo"))
    bad_set = cli("run", spec, "--set", "spec.retries")
    assert bad_set.returncode == 2 and "--set expects path=value" in bad_set.stderr
    unknown = cli("submit", spec, "--cluster", "locla")
    assert unknown.returncode == 2 and "did you mean 'local'?" in unknown.stderr
    missing = cli("run", "no/such/spec.yaml")
    assert missing.returncode == 2 and "no/such/spec.yaml: no such file" in missing.stderr
    usage = cli("status")
    assert usage.returncode == 2
    assert not (home / "jobs.db").exists()


def test_an_unreachable_cluster_exits_3_and_writes_nothing(home, write_spec):
    proc = cli("run", str(write_spec("jobfuncs:echo")), "--cluster", "tcp://127.0.0.1:9")
    assert proc.returncode == 3
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in proc.stderr
    assert not (home / "jobs.db").exists()


@contextmanager
def sigint_as_at_a_terminal() -> Iterator[None]:
    """Children started in here get SIGINT as a command typed at a terminal does.

    A process started in the background of a shell (``make test &``, a CI runner) ignores
    SIGINT, as POSIX asks, and every process it starts inherits that: Ctrl-C sent to such
    a child is lost. Python resets its own handlers to the default on exec; an ignored
    signal or a blocked one stays so.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


@pytest.mark.cluster
def test_ctrl_c_on_run_cancels_the_job(home, write_spec):
    spec = write_spec("jobfuncs:sleepy", {"seconds": 60})
    with sigint_as_at_a_terminal():
        proc = subprocess.Popen([sys.executable, "-m", "shipyard", "run", str(spec)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: any(j["state"] == "RUNNING" for j in shipyard_json("list")),
               timeout=120, what="the job to run")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "cancelling" in err
    assert shipyard_json("list")[0]["state"] == "CANCELLED"


@pytest.mark.parametrize("command", [["list", "--json"], ["status", "x-20260101-000000-abcd"]])
def test_quick_commands_do_not_import_heavy_libraries(home, command):
    code = ("import sys, runpy; sys.argv = ['shipyard', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('shipyard', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('dask', 'distributed', 'pandas', 'pydantic', 'rich',"
            " 'numpy') if m in sys.modules)\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True)
    assert "HEAVY []" in proc.stderr, proc.stderr
