"""The ``ray`` backend: jobs run on an existing Ray cluster through the Ray Jobs API.

``--cluster http://host:8265`` (the head's dashboard address, as ``ray job submit``
takes) submits each attempt with ``ray.job_submission.JobSubmissionClient`` as a Ray job
whose entrypoint is the same runner every backend starts; a ``torch`` job's trainer then
joins that cluster (``ray.init(address="auto")``) and places its workers on it.

- **Ids**: the Ray submission id is the job id (``<job id>-attempt-<n>`` for retries), so
  submitting the same attempt twice finds the first one instead of starting a second.
- **States** are Ray's, mapped: PENDING/RUNNING as they are, SUCCEEDED, FAILED (the runner's
  exit status says why: 2 bad input, 3 cluster), STOPPED -> CANCELLED.
- **Retries and timeouts** need no process of ours on the cluster: whoever reads the job
  (``status``, ``wait``, ``list``) reconciles it, submitting the next attempt after a
  failed one and stopping an attempt that ran past ``spec.timeout``.
- **Logs** come from the Ray Jobs API, attempt by attempt.
- **The spec** travels with the submission (an environment variable of the Ray job), so
  the runner needs nothing from this machine but the package; ``result.json`` and the
  artifacts are written to the run directory's path on the head node, which is this
  machine's run directory when both share a filesystem (a head on this machine, or
  a shared mount).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shlex
import time
from typing import Any

from shipyard.cluster.base import Backend, ExistingCluster
from shipyard.errors import ClusterError, InvalidTransitionError, UsageError
from shipyard.jobs.home import attempt_outcome_path
from shipyard.jobs.states import FailureKind, JobState
from shipyard.jobs.store import JobRecord

__all__ = ["RayJobsBackend", "submission_id", "SPEC_ENV"]

log = logging.getLogger("shipyard.ray_jobs")

#: The environment variable that carries the spec (base64 of its YAML) to the runner.
SPEC_ENV = "SHIPYARD_SPEC_B64"

#: The runner's exit status -> why the attempt failed (see shipyard.jobs.runner).
_EXIT_KINDS = {2: FailureKind.INPUT, 3: FailureKind.CLUSTER}


def submission_id(job_id: str, attempt: int) -> str:
    """The Ray submission id of an attempt.

    Examples
    --------
    >>> submission_id("train-20261125-101500-ab12", 1)
    'train-20261125-101500-ab12'
    >>> submission_id("train-20261125-101500-ab12", 2)
    'train-20261125-101500-ab12-attempt-2'
    """
    return job_id if attempt == 1 else f"{job_id}-attempt-{attempt}"


def _is_transient(err: Exception) -> bool:
    """Whether the Jobs API said to try again (no job agent yet, overloaded, 502-504).

    Examples
    --------
    >>> _is_transient(RuntimeError("Request failed with status code 500: No available "
    ...                            "agent to submit job, please try again later.."))
    True
    >>> _is_transient(RuntimeError("Request failed with status code 400: bad runtime_env"))
    False
    """
    text = str(err)
    return ("try again later" in text or "No available agent" in text
            or any(f"status code {code}" in text for code in (429, 502, 503, 504)))


def _use_ray_auth_token() -> None:
    """Send Ray's auth token when there is one, found as ``ray job submit`` finds it
    (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``): clusters started
    by Ray 2.5x and later refuse the Jobs API without it."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


class RayJobsBackend(ExistingCluster, Backend):
    """Jobs as Ray jobs on an existing cluster, reached at its dashboard address."""

    name = "ray"
    cluster_kind = "an existing Ray cluster"
    how_to_start = "ray start --head / ray stop"
    #: How long a submission is retried while the cluster answers "try again later"
    #: (a head that has just started has no job agent yet).
    SUBMIT_RETRY_SECONDS = 60.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._client = None

    # -- the Jobs API client --------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self):
        address = self.profile.address or ""
        if not address.startswith(("http://", "https://")):
            raise UsageError(f"cluster {self.profile.name!r}: a Ray cluster is given by its "
                             f"dashboard address, http://host:8265; got {address!r}")
        from ray.job_submission import JobSubmissionClient

        _use_ray_auth_token()
        try:
            return JobSubmissionClient(address)
        except Exception as err:  # ConnectionError, or the HTTP library's own errors
            raise ClusterError(
                f"cannot reach the Ray Jobs API at {address} ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else err}); check that the Ray head "
                "is running with its dashboard (ray start --head) and reachable from here"
            ) from None

    def _check_reachable(self) -> None:
        self.client  # noqa: B018 - connecting is the check

    def _scheduler_address(self) -> str | None:
        return self.profile.address

    # -- submitting -----------------------------------------------------------------------

    def _entrypoint(self, record: JobRecord) -> str:
        python = self.profile.settings.get("python", "python")
        run_dir = self.home.run_dir(record.id)
        command = [python, "-m", "shipyard.jobs.runner", "--run-dir", str(run_dir),
                   "--job-id", record.id, "--attempt", str(record.attempt),
                   "--ray-address", "auto", "--spec-from-env", SPEC_ENV]
        runner = " ".join(shlex.quote(part) for part in command)
        if record.workdir:
            # relative paths in the spec mean what they meant where it was submitted,
            # where that directory exists on the head too
            return f"cd {shlex.quote(record.workdir)} 2>/dev/null; {runner}"
        return runner

    def _runtime_env(self, record: JobRecord) -> dict[str, Any]:
        spec_text = (self.home.run_dir(record.id) / "spec.yaml").read_bytes()
        env = {SPEC_ENV: base64.b64encode(spec_text).decode("ascii"),
               "SHIPYARD_HOME": str(self.home.root), "PYTHONUNBUFFERED": "1"}
        # the entrypoint's module is found as `shipyard validate` found it (as the local
        # backend's supervisor passes it on)
        paths = [p for p in (record.spec_dir, record.workdir, os.environ.get("PYTHONPATH"))
                 if p]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        return {"env_vars": env}

    def _launch(self, record: JobRecord) -> None:
        sid = submission_id(record.id, record.attempt)
        deadline = time.monotonic() + self.SUBMIT_RETRY_SECONDS
        while True:
            try:
                self.client.submit_job(
                    entrypoint=self._entrypoint(record), submission_id=sid,
                    runtime_env=self._runtime_env(record),
                    metadata={"shipyard_job_id": record.id, "attempt": str(record.attempt),
                              "name": record.name},
                )
                break
            except Exception as err:
                if "already exists" in str(err):
                    # submitted before (a retried call, another process): the same attempt
                    log.info("Ray job %s already exists; not submitting it again", sid)
                    break
                if not _is_transient(err) or time.monotonic() >= deadline:
                    raise
                log.info("the Ray Jobs API is not ready (%s); retrying", err)
                time.sleep(1.0)
        self.store.update(record.id, external_id=sid)
        self.store.note(record.id, f"submitted to {self.profile.address} as Ray job {sid}",
                        record.attempt)

    # -- watching -------------------------------------------------------------------------

    def _move(self, record: JobRecord, to: JobState, reason: str, **kwargs: Any) -> None:
        try:
            self.store.transition(record.id, to, reason, if_attempt=record.attempt, **kwargs)
        except InvalidTransitionError:
            pass  # another process moved it first

    def _copy_progress(self, record: JobRecord) -> None:
        path = self.home.run_dir(record.id) / "progress.json"
        try:
            progress = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # not written yet, or not on this machine's filesystem
        if progress != record.progress:
            self.store.set_progress(record.id, progress)

    def _outcome(self, record: JobRecord, info: Any) -> tuple[FailureKind, str]:
        path = attempt_outcome_path(self.home.run_dir(record.id), record.attempt)
        try:
            outcome = json.loads(path.read_text())
            return FailureKind(outcome.get("kind", "error")), outcome.get("reason") or "failed"
        except (OSError, ValueError):
            pass  # the head does not share our filesystem: Ray's own account
        code = getattr(info, "driver_exit_code", None)
        message = " ".join((getattr(info, "message", None) or "").split())
        return _EXIT_KINDS.get(code, FailureKind.ERROR), message[:500] or "the Ray job failed"

    def _refresh(self, record: JobRecord) -> JobRecord:
        from ray.job_submission import JobStatus

        sid = record.external_id or submission_id(record.id, record.attempt)
        try:
            info = self.client.get_job_info(sid)
        except ClusterError:
            return record  # unreachable now: keep what we know
        except Exception as err:
            if "does not exist" in str(err) or "404" in str(err):
                self._move(record, JobState.FAILED,
                           f"Ray job {sid} is not known to {self.profile.address} "
                           "(the cluster was restarted?)", failure_kind=FailureKind.LOST)
                return self.store.get(record.id)
            log.warning("could not read Ray job %s: %s", sid, err)
            return record
        self._copy_progress(record)
        status = info.status
        if status == JobStatus.RUNNING and record.state is JobState.PENDING:
            self._move(record, JobState.RUNNING, f"attempt {record.attempt} started")
        elif status == JobStatus.SUCCEEDED:
            if record.state is JobState.PENDING:
                self._move(record, JobState.RUNNING, f"attempt {record.attempt} started")
                record = self.store.get(record.id)
            self._move(record, JobState.SUCCEEDED, "completed")
        elif status == JobStatus.STOPPED:
            self._move(record, JobState.CANCELLED, "cancelled")
        elif status == JobStatus.FAILED:
            kind, reason = self._outcome(record, info)
            self._attempt_failed(record, kind, reason)
        elif status == JobStatus.RUNNING and record.timeout_s and info.start_time:
            if time.time() - info.start_time / 1000 > record.timeout_s:  # Ray keeps ms
                self._stop(sid, wait=10.0)
                self._attempt_failed(record, FailureKind.TIMEOUT, "timeout")
        return self.store.get(record.id)

    def _attempt_failed(self, record: JobRecord, kind: FailureKind, reason: str) -> None:
        if record.state is JobState.PENDING:
            self._move(record, JobState.RUNNING, f"attempt {record.attempt} started")
            record = self.store.get(record.id)
        retryable = kind is not FailureKind.INPUT
        if retryable and record.attempt < record.max_attempts and not record.cancel_requested:
            self._move(record, JobState.PENDING, f"attempt {record.attempt} failed: {reason}",
                       failure_kind=kind, next_attempt=True)
            retried = self.store.get(record.id)
            if retried.attempt == record.attempt + 1 and retried.state is JobState.PENDING:
                self._launch(retried)
        else:
            self._move(record, JobState.FAILED, reason, failure_kind=kind)

    # -- cancelling -----------------------------------------------------------------------

    def _stop(self, sid: str, wait: float) -> None:
        from ray.job_submission import JobStatus

        self.client.stop_job(sid)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.client.get_job_status(sid) in (JobStatus.STOPPED, JobStatus.SUCCEEDED,
                                                   JobStatus.FAILED):
                return
            time.sleep(0.2)

    def _cancel(self, record: JobRecord, timeout: float) -> None:
        self.store.request_cancel(record.id)
        sid = record.external_id or submission_id(record.id, record.attempt)
        self._stop(sid, wait=timeout)
        self.store.transition(record.id, JobState.CANCELLED, "cancelled")

    # -- logs -----------------------------------------------------------------------------

    def _read_log(self, job_id: str, attempt: int, offset: int) -> bytes:
        try:
            text = self.client.get_job_logs(submission_id(job_id, attempt))
        except Exception:  # not started yet, or gone: nothing to show for now
            return b""
        return text.encode("utf-8")[offset:]

