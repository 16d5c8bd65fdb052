"""What the terminal shows (lib/shipyard/console.py), from records and log lines alone:
folded tracebacks in a pipeline's interleaved log, and no ETA once a job has ended."""

from __future__ import annotations

import traceback

import pytest
from rich.console import Console

from shipyard.console import TracebackFolder, format_status, live_view
from shipyard.core.states import JobState
from shipyard.core.store import JobRecord
from shipyard.pipelines.driver import split_stage_line

NOTE = "  (traceback folded)"
NOW = 1_796_644_800.0  # 2026-12-07 12:00 UTC


def record(state: JobState, progress: dict | None) -> JobRecord:
    return JobRecord(
        id="job-20261207-120000-abcd", name="job", state=state, reason=None,
        failure_kind=None, attempt=1, max_attempts=1, timeout_s=None, cluster="local",
        backend="local", cluster_address=None, created_at=NOW - 10, started_at=NOW - 9,
        finished_at=NOW if state.is_terminal() else None, progress=progress,
        cancel_requested=False, supervisor_pid=None, supervisor_started=None,
        runner_pid=None, runner_started=None, workdir=None, spec_dir=None)


def test_each_stage_of_a_pipeline_folds_its_own_traceback():
    # two stages fail at the same time: their lines interleave in the pipeline's log
    log = [
        "[pipeline] stage a: submitted as job p-a-1",
        "[a] 12:00:01 ERROR shipyard.runner: attempt 1 failed:",
        "[a] Traceback (most recent call last):",
        "[b] Traceback (most recent call last):",
        '[a]   File "/jobs/a.py", line 3, in main',
        "[b]   File \"/jobs/b.py\", line 9, in main",
        "[a]     raise KeyError('x')",
        "[a] KeyError: 'x'",
        "[a] ",
        "[a] The above exception was the direct cause of the following exception:",
        "[a] ",
        "[a] Traceback (most recent call last):",
        '[a]   File "/jobs/a.py", line 5, in main',
        "[b]     ^^^^^^",
        "[a] ValueError: no x",
        "[b] RuntimeError: b broke",
        "[b] 12:00:02 INFO shipyard.runner: report: runs/p-b-1/report/index.html",
        "[pipeline] stage a: failed: ValueError: no x",
        "2026-12-07 12:00:03 INFO shipyard.pipeline: pipeline driver p ended FAILED",
    ]
    folder = TracebackFolder(NOTE, split=split_stage_line)
    shown = [out for line in log for out in folder.feed(line)]
    assert shown == [
        "[pipeline] stage a: submitted as job p-a-1",
        "[a] 12:00:01 ERROR shipyard.runner: attempt 1 failed:",
        "[a]   (traceback folded)",
        "[b]   (traceback folded)",
        "[a] KeyError: 'x'",
        "[a] ValueError: no x",
        "[b] RuntimeError: b broke",
        "[b] 12:00:02 INFO shipyard.runner: report: runs/p-b-1/report/index.html",
        "[pipeline] stage a: failed: ValueError: no x",
        "2026-12-07 12:00:03 INFO shipyard.pipeline: pipeline driver p ended FAILED",
    ]


def test_a_chained_traceback_folds_whole_keeping_each_exception_line():
    try:
        try:
            {}["x"]
        except KeyError as err:
            raise ValueError("no x") from err
    except ValueError as err:
        text = "".join(traceback.format_exception(err))
    log = ["before", *text.rstrip("\n").split("\n"), "", "after"]
    assert "The above exception was the direct cause of the following exception:" in log
    folder = TracebackFolder(NOTE)
    assert [out for line in log for out in folder.feed(line)] == [
        "before", NOTE, "KeyError: 'x'", "ValueError: no x", "", "after"]


def test_a_single_jobs_log_is_not_split_by_what_looks_like_a_prefix():
    folder = TracebackFolder(NOTE)
    lines = ["[epoch-1] loss 0.5", "Traceback (most recent call last):",
             '  File "x.py", line 1', "[note] not a frame", "after"]
    assert [out for line in lines for out in folder.feed(line)] == [
        "[epoch-1] loss 0.5", NOTE, "[note] not a frame", "after"]


PROGRESS = {"phase": "stepping", "done": 3, "total": 60, "eta_seconds": 62}


@pytest.mark.parametrize("state", [JobState.CANCELLED, JobState.FAILED, JobState.SUCCEEDED])
def test_an_ended_jobs_status_shows_how_far_it_got_but_no_eta(state):
    page = format_status(record(state, PROGRESS), [], "runs/x")
    assert "progress:  stepping 3/60" in page
    assert "ETA" not in page


def test_a_running_jobs_status_and_live_view_show_the_eta():
    running = record(JobState.RUNNING, PROGRESS)
    assert "progress:  stepping 3/60, ETA 01:02" in format_status(running, [], "runs/x")
    assert "ETA 01:02" in _rendered(live_view(running, now=NOW))


@pytest.mark.parametrize("state", [JobState.CANCELLED, JobState.FAILED])
def test_the_live_view_of_an_ended_job_shows_no_eta(state):
    text = _rendered(live_view(record(state, PROGRESS), now=NOW))
    assert str(state) in text and "ETA" not in text


def _rendered(renderable) -> str:
    console = Console(record=True, width=120, force_terminal=False)
    console.print(renderable)
    return console.export_text()
