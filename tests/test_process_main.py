"""The main of the processes that carry a job to its end (supervisor, pipeline driver)."""

from __future__ import annotations

import logging

from shipyard.core.home import Home
from shipyard.core.ids import new_job_id
from shipyard.runtime.process_main import job_process_main
from shipyard.core.states import FailureKind, JobState
from shipyard.core.store import JobStore

LOG = logging.getLogger("test.process_main")


def pending_job() -> tuple[JobStore, str]:
    store = JobStore(Home.from_env().db)
    record = store.create(lambda: new_job_id("demo"), name="demo", cluster="local",
                          backend="local")
    store.transition(record.id, JobState.RUNNING, "started")
    return store, record.id


def test_an_error_of_the_process_itself_fails_the_job(home):
    store, job_id = pending_job()

    def start(_home, _job_id):
        raise RuntimeError("the store moved")

    assert job_process_main("some.module", "supervisor", start, LOG, [job_id]) == 1
    record = store.get(job_id)
    assert record.state is JobState.FAILED
    assert record.reason == "supervisor error: RuntimeError: the store moved"
    assert record.failure_kind == FailureKind.ERROR.value


def test_the_run_decides_the_state_and_a_wrong_command_line_exits_2(home, capsys):
    store, job_id = pending_job()

    def start(_home, started_id):
        def run():
            store.transition(started_id, JobState.SUCCEEDED, "completed")
            return JobState.SUCCEEDED
        return run

    assert job_process_main("some.module", "supervisor", start, LOG, [job_id]) == 0
    assert store.get(job_id).state is JobState.SUCCEEDED
    assert job_process_main("some.module", "supervisor", start, LOG, []) == 2
    assert "usage: python -m some.module JOB_ID" in capsys.readouterr().err
