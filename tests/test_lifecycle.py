"""core.lifecycle.Lifecycle.apply: what a backend's reading of a job's attempt does to the
job, the same for every backend that reads a cluster (ray, kubernetes). The backends'
own tests run these paths against Ray and the Kubernetes emulator; here each rule is
shown on its own, with the hooks recording what the lifecycle asked for and when."""

from __future__ import annotations

import pytest

from shipyard.core.lifecycle import Lifecycle, Observation
from shipyard.core.states import FailureKind, JobState
from shipyard.core.store import JobStore


class Hooks:
    """An AttemptHooks that records each call with the job's state at that moment."""

    def __init__(self, store: JobStore, outcome: dict | None = None):
        self.store, self.outcome, self.calls = store, outcome, []

    def _record(self, what, record):
        self.calls.append((what, record.attempt, self.store.get(record.id).state.value))

    def launch_attempt(self, record):
        self._record("launch", record)

    def stop_attempt(self, record):
        self._record("stop", record)

    def collect_attempt(self, record):
        self._record("collect", record)

    def release_attempt(self, record):
        self._record("release", record)

    def attempt_outcome(self, record):
        return self.outcome


@pytest.fixture
def store(tmp_path):
    return JobStore(tmp_path / "jobs.db")


def job(store, *, attempts=1, timeout=None, running=False):
    record = store.create(lambda: "demo-20260101-000000-abcd", name="demo", cluster="c",
                          backend="ray", max_attempts=attempts, timeout_s=timeout)
    if running:
        record = store.transition(record.id, JobState.RUNNING, "attempt 1 started")
    return record


def test_a_failure_is_told_by_the_runner_and_retried_after_its_results_are_home(store):
    record = job(store, attempts=2, running=True)
    hooks = Hooks(store, outcome={"status": "failed", "kind": "input",
                                  "reason": "column 'age' is missing"})
    after = Lifecycle(store).apply(record, Observation(JobState.FAILED, "exit code 2"), hooks)
    # bad input is never retried, whatever attempts are left; the runner's reason wins
    assert (after.state, after.failure_kind, after.reason) == (
        JobState.FAILED, "input", "column 'age' is missing")
    assert hooks.calls == [("collect", 1, "RUNNING"), ("release", 1, "RUNNING")]

    other = store.create(lambda: "demo-20260101-000001-abcd", name="demo", cluster="c",
                         backend="ray", max_attempts=2)
    hooks = Hooks(store)
    after = Lifecycle(store).apply(other, Observation(JobState.FAILED, "OOMKilled",
                                                      FailureKind.ERROR), hooks)
    assert (after.state, after.attempt) == (JobState.PENDING, 2)
    assert hooks.calls == [("collect", 1, "PENDING"), ("release", 1, "PENDING"),
                           ("launch", 2, "PENDING")]
    assert [e.state for e in store.events(other.id) if e.state] == [
        JobState.PENDING, JobState.RUNNING, JobState.PENDING]


def test_an_attempt_past_its_timeout_is_recorded_then_stopped(store):
    record = job(store, timeout=60, running=True)
    hooks = Hooks(store)
    seen = Observation(JobState.RUNNING, running_since=0.0)  # started in 1970
    after = Lifecycle(store).apply(record, seen, hooks)
    assert (after.state, after.failure_kind, after.reason) == (JobState.FAILED, "timeout",
                                                               "timeout")
    # recorded before stopping: no reader maps the stopped attempt to CANCELLED
    assert hooks.calls[-1] == ("stop", 1, "FAILED")
    assert any("ran past 60s" in (e.message or "") for e in store.events(record.id))


def test_a_running_attempt_within_its_timeout_only_shows_its_reason(store):
    record = job(store, timeout=None)
    hooks = Hooks(store)
    after = Lifecycle(store).apply(record, Observation(JobState.RUNNING, "2/2 workers",
                                                       running_since=0.0), hooks)
    assert (after.state, after.reason) == (JobState.RUNNING, "2/2 workers")
    assert hooks.calls == []


def test_a_stuck_attempt_fails_after_the_start_timeout_and_is_stopped(store):
    record = job(store)
    seen = Observation(JobState.PENDING, "ErrImagePull: no such image", stuck=True)
    waiting = Lifecycle(store).apply(record, seen, Hooks(store), start_timeout=3600)
    assert (waiting.state, waiting.reason) == (JobState.PENDING, "ErrImagePull: no such image")

    hooks = Hooks(store)
    after = Lifecycle(store).apply(waiting, seen, hooks, start_timeout=0)
    assert (after.state, after.failure_kind) == (JobState.FAILED, "cluster")
    assert "start_timeout" in after.reason
    assert hooks.calls == [("stop", 1, "FAILED")]


def test_a_resource_that_retries_itself_moves_the_store_one_attempt_per_failure(store):
    record = job(store, attempts=3)
    hooks = Hooks(store)
    after = Lifecycle(store).apply(
        record, Observation(JobState.RUNNING, failed_attempts=2, retries_itself=True), hooks)
    assert (after.state, after.attempt) == (JobState.RUNNING, 3)
    assert "launch" not in [call[0] for call in hooks.calls]  # it launches its own


def test_a_vanished_attempt_ends_as_its_results_say_or_as_lost(store):
    hooks = Hooks(store, outcome={"status": "succeeded"})
    record = job(store, running=True)
    assert Lifecycle(store).apply(record, Observation(None, "gone"), hooks).state \
        is JobState.SUCCEEDED
    assert hooks.calls[0] == ("collect", 1, "RUNNING")

    other = store.create(lambda: "demo-20260101-000001-abcd", name="demo", cluster="c",
                         backend="ray")
    other = store.transition(other.id, JobState.RUNNING, "attempt 1 started")
    after = Lifecycle(store).apply(other, Observation(None, "its RayJob is gone"), Hooks(store))
    assert (after.state, after.failure_kind, after.reason) == (JobState.FAILED, "lost",
                                                               "its RayJob is gone")


def test_an_attempt_nobody_launched_is_launched_after_the_grace(store):
    record = job(store)
    hooks = Hooks(store)
    Lifecycle(store).apply(record, Observation(None), hooks, launch_grace=3600)
    assert [c[0] for c in hooks.calls] == ["collect"]  # another reader may be launching it
    Lifecycle(store).apply(record, Observation(None), hooks, launch_grace=0)
    assert hooks.calls[-1] == ("launch", 1, "PENDING")

