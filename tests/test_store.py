"""The SQLite job store: ids, transitions, the terminal guard, events, concurrency."""

import multiprocessing
import sqlite3

import pytest

from shipyard.core.errors import InvalidTransitionError, JobNotFoundError
from shipyard.core.ids import JOB_ID_PATTERN, new_job_id
from shipyard.core.states import JobState
from shipyard.core.store import JobStore


@pytest.fixture
def store(tmp_path):
    return JobStore(tmp_path / "jobs.db")


def make(store, name="demo", **kwargs):
    return store.create(lambda: new_job_id(name), name=name, cluster="local",
                        backend="local", **kwargs)


def test_ids_are_readable_and_sort_by_time():
    first = new_job_id("churn-prep", now=1_700_000_000)
    later = new_job_id("churn-prep", now=1_700_000_001)
    assert JOB_ID_PATTERN.match(first).group("name") == "churn-prep"
    assert first.startswith("churn-prep-20231114-221320-")
    assert sorted([later, first]) == [first, later]


def test_create_starts_pending_with_an_event(store):
    record = make(store, max_attempts=3, timeout_s=60.0, labels={"team": "growth"})
    assert record.state is JobState.PENDING and record.attempt == 1
    assert (record.max_attempts, record.timeout_s, record.labels) == (3, 60.0, {"team": "growth"})
    assert [(e.state, e.message) for e in store.events(record.id)] == [("PENDING", "submitted")]


def test_a_taken_id_is_drawn_again(store):
    ids = iter(["x-20260101-000000-aaaa", "x-20260101-000000-aaaa", "x-20260101-000000-bbbb"])
    first = store.create(lambda: next(ids), name="x", cluster="local", backend="local")
    second = store.create(lambda: next(ids), name="x", cluster="local", backend="local")
    assert (first.id, second.id) == ("x-20260101-000000-aaaa", "x-20260101-000000-bbbb")


def test_the_life_of_a_retried_job(store):
    job = make(store, max_attempts=2).id
    assert store.transition(job, JobState.RUNNING, "attempt 1 started").started_at is not None
    retry = store.transition(job, JobState.PENDING, "attempt 1 failed: boom",
                             failure_kind="error", next_attempt=True)
    assert (retry.state, retry.attempt, retry.finished_at) == (JobState.PENDING, 2, None)
    store.transition(job, JobState.RUNNING, "attempt 2 started")
    done = store.transition(job, JobState.SUCCEEDED, "completed")
    assert done.finished_at is not None and done.attempt == 2
    states = [e.state for e in store.events(job)]
    assert states == ["PENDING", "RUNNING", "PENDING", "RUNNING", "SUCCEEDED"]


def test_transitions_outside_the_state_machine_are_refused(store):
    job = make(store).id
    with pytest.raises(InvalidTransitionError, match="PENDING -> SUCCEEDED"):
        store.transition(job, JobState.SUCCEEDED)


@pytest.mark.parametrize("final", [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED])
def test_a_terminal_state_never_changes(store, final):
    job = make(store).id
    store.transition(job, JobState.RUNNING)
    store.transition(job, final, "the end")
    for later in JobState:
        assert store.transition(job, later, "again") is None
    assert store.get(job).state is final and store.get(job).reason == "the end"


def test_the_database_itself_refuses_to_change_a_terminal_state(store):
    job = make(store).id
    store.transition(job, JobState.CANCELLED, "cancelled")
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="terminal state never changes"):
        conn.execute("UPDATE jobs SET state = 'RUNNING' WHERE id = ?", (job,))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE jobs SET reason = 'rewritten' WHERE id = ?", (job,))
    conn.execute("UPDATE jobs SET progress = '{}' WHERE id = ?", (job,))  # bookkeeping is fine


def test_unknown_ids_say_what_exists(store):
    make(store, name="churn")
    with pytest.raises(JobNotFoundError, match="recent jobs with that name: churn-"):
        store.get("churn-20990101-000000-ffff")


def test_reading_never_creates_the_database(tmp_path):
    store = JobStore(tmp_path / "none" / "jobs.db")
    assert store.list() == []
    with pytest.raises(JobNotFoundError):
        store.get("x")
    assert not store.path.exists()


def test_list_is_oldest_first_and_limit_keeps_the_newest(store):
    ids = [make(store, name=f"j{i}").id for i in range(5)]
    assert [r.id for r in store.list()] == ids
    assert [r.id for r in store.list(limit=2)] == ids[-2:]
    store.transition(ids[0], JobState.RUNNING)
    assert [r.id for r in store.list(states={JobState.RUNNING})] == [ids[0]]


def test_progress_and_cancel_flags(store):
    job = make(store).id
    store.set_progress(job, {"phase": "load", "done": 1, "total": 4})
    store.request_cancel(job)
    record = store.get(job)
    assert record.progress == {"phase": "load", "done": 1, "total": 4}
    assert record.cancel_requested
    assert store.events(job)[-1].message == "cancel requested"


def test_update_refuses_state_columns(store):
    job = make(store).id
    with pytest.raises(ValueError, match="state"):
        store.update(job, state="SUCCEEDED")


def _hammer(path, worker, count, out):
    store = JobStore(path)
    ids = []
    for i in range(count):
        record = store.create(lambda: new_job_id(f"w{worker}"), name=f"w{worker}",
                              cluster="local", backend="local", max_attempts=2)
        store.transition(record.id, JobState.RUNNING)
        store.set_progress(record.id, {"done": i})
        store.transition(record.id, JobState.SUCCEEDED, "completed")
        ids.append(record.id)
    out.put(ids)


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    path = tmp_path / "jobs.db"
    out = multiprocessing.get_context("spawn").Queue()
    workers = [multiprocessing.get_context("spawn").Process(target=_hammer, args=(path, w, 40, out))
               for w in range(4)]
    for proc in workers:
        proc.start()
    ids = [job for _ in workers for job in out.get(timeout=120)]
    for proc in workers:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    store = JobStore(path)
    records = store.list()
    assert len(ids) == len(set(ids)) == len(records) == 160
    assert {r.id for r in records} == set(ids)
    assert all(r.state is JobState.SUCCEEDED for r in records)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for record in records[:10]:
        assert [e.state for e in store.events(record.id)] == ["PENDING", "RUNNING", "SUCCEEDED"]


def test_statuses_are_the_records_status_objects(store):
    job = make(store, labels={"team": "a"}).id
    make(store, name="other")
    store.transition(job, JobState.RUNNING)
    store.set_progress(job, {"phase": "load", "done": 2})
    assert store.statuses() == [r.to_status() for r in store.list()]
    assert store.statuses(limit=1) == [store.list()[-1].to_status()]
