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

from shipyard.backends.base import Backend, ExistingCluster
from shipyard.runtime.ray_session import quiet_auth_notice
from shipyard.core.errors import ClusterError, UsageError
from shipyard.core.home import read_outcome
from shipyard.core.lifecycle import Observation
from shipyard.core.runner_cli import runner_command
from shipyard.core.states import FailureKind, JobState
from shipyard.core.store import JobRecord
from shipyard.train.storage import TRAIN_STORAGE_ENV

__all__ = ["RayJobsBackend", "submission_id", "SPEC_ENV"]

log = logging.getLogger("shipyard.ray_jobs")

#: The environment variable that carries the spec (base64 of its YAML) to the runner.
SPEC_ENV = "SHIPYARD_SPEC_B64"



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


def _is_not_found(err: Exception) -> bool:
    """Whether the Jobs API answered that the job does not exist (a connection error's
    text holds the URL, which holds the job id, so a bare "404" is not enough).

    Examples
    --------
    >>> _is_not_found(RuntimeError("Request failed with status code 404: Job x does not exist."))
    True
    >>> _is_not_found(ConnectionError("Failed to connect to http://h:8265/api/jobs/a-20260404-1"))
    False
    """
    text = str(err)
    return "status code 404" in text or "does not exist" in text


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
    quiet_auth_notice()
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


class RayJobsBackend(ExistingCluster, Backend):
    """Jobs as Ray jobs on an existing cluster, reached at its dashboard address."""

    name = "ray"
    cluster_kind = "an existing Ray cluster"
    how_to_start = "ray start --head / ray stop"
    #: Seconds to wait for the Jobs API to accept a connection.
    CONNECT_TIMEOUT = 10.0
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
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError:
            raise UsageError(f"--cluster {address}: submitting to a Ray cluster needs Ray "
                             "with its job client on this machine: pip install "
                             "'shipyard[train]'") from None

        connect_timeout = self.CONNECT_TIMEOUT

        class BoundedClient(JobSubmissionClient):
            # Ray's client sends requests with no timeout: a head that stopped answering
            # would hang `status` and `list`. Bound each request (connect, read).
            def _do_request(self, method, endpoint, **kwargs):
                kwargs.setdefault("timeout", (connect_timeout, 60.0))
                return super()._do_request(method, endpoint, **kwargs)

        _use_ray_auth_token()
        try:
            return BoundedClient(address)
        except Exception as err:  # ConnectionError, or the HTTP library's own errors
            raise ClusterError(
                f"cannot reach the Ray Jobs API at {address} ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else err}); check that the Ray head "
                "is running with its dashboard (ray start --head) and reachable from here"
            ) from None

    def _ships_code(self, cluster_address: str | None) -> bool:
        return True  # the head and its workers may see none of this machine's files

    def _check_reachable(self) -> None:
        self.client  # noqa: B018 - connecting is the check

    def _scheduler_address(self) -> str | None:
        return self.profile.address

    # -- submitting -----------------------------------------------------------------------

    def _submission(self, record: JobRecord) -> dict[str, Any]:
        """How attempts of this job are submitted: the interpreter and the Ray runtime env.

        Fixed by the first attempt and kept in the run directory, so a retry submitted by
        whichever process reads the job (``status``, ``list``, ...) is submitted as the
        submitter set it up, with the profile's ``python`` and the submitter's paths.
        """
        run_dir = self.home.run_dir(record.id)
        known = run_dir.side("ray")
        if known is not None:
            return known
        spec_text = self.home.run_dir(record.id).spec.read_bytes()
        env = {SPEC_ENV: base64.b64encode(spec_text).decode("ascii"),
               "SHIPYARD_HOME": str(self.home.root), "PYTHONUNBUFFERED": "1"}
        # the entrypoint's module is found as `shipyard validate` found it (as the local
        # backend's supervisor passes it on)
        paths = [p for p in (record.spec_dir, record.workdir, os.environ.get("PYTHONPATH"))
                 if p]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        if self.profile.settings.get("train_storage"):
            # checkpoints where every node reaches them (read by shipyard.train.job)
            env[TRAIN_STORAGE_ENV] = str(self.profile.settings["train_storage"])
        runtime_env: dict[str, Any] = {"env_vars": env}
        code = run_dir.side("code")
        if code is not None:
            # Ray uploads the package once per content (named by its hash) and runs the
            # entrypoint and every worker in it, first on their PYTHONPATH
            runtime_env["working_dir"] = code["zip"]
        submission = {"python": self.profile.settings.get("python", "python"),
                      "runtime_env": runtime_env}
        run_dir.set_side("ray", submission)
        return submission

    def _entrypoint(self, record: JobRecord, python: str) -> str:
        run_dir = self.home.run_dir(record.id)
        command = runner_command(python, run_dir=run_dir, job_id=record.id,
                                 attempt=record.attempt, ray_address="auto",
                                 spec_from_env=SPEC_ENV)
        runner = " ".join(shlex.quote(part) for part in command)
        if record.workdir:
            # relative paths in the spec mean what they meant where it was submitted,
            # where that directory exists on the head too
            return f"cd {shlex.quote(record.workdir)} 2>/dev/null; {runner}"
        return runner

    def _launch(self, record: JobRecord) -> None:
        sid = submission_id(record.id, record.attempt)
        submission = self._submission(record)
        deadline = time.monotonic() + self.SUBMIT_RETRY_SECONDS
        while True:
            try:
                self.client.submit_job(
                    entrypoint=self._entrypoint(record, submission["python"]),
                    submission_id=sid, runtime_env=submission["runtime_env"],
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
    #
    # Several processes may read the same job at once (`run` waiting, `logs -f`, `list`).
    # Each looks at the Ray job of the attempt the store is at (its id follows from the
    # attempt), and acts on it only through a transition guarded by that attempt number:
    # whoever moves the job first owns the consequence (submitting the next attempt).

    def _copy_progress(self, record: JobRecord) -> None:
        try:
            progress = json.loads(self.home.run_dir(record.id).progress.read_text())
        except (OSError, ValueError):
            return  # not written yet, or not on this machine's filesystem
        self.lifecycle.copy_progress(record, progress)

    def _observe(self, record: JobRecord, info: Any) -> Observation:
        """The Ray job of the record's attempt, as the lifecycle reads it (``info``: its
        ``JobInfo``, None where Ray does not know it)."""
        from ray.job_submission import JobStatus

        sid = submission_id(record.id, record.attempt)
        if info is None:
            return Observation(None, f"Ray job {sid} is not known to {self.profile.address} "
                                     "(the cluster was restarted?)")
        if info.status == JobStatus.FAILED:
            # the runner's own account, where the head shares this disk, says more (the
            # lifecycle reads it); else Ray's
            code = getattr(info, "driver_exit_code", None)
            message = " ".join((getattr(info, "message", None) or "").split())
            return Observation(JobState.FAILED, message[:500] or "the Ray job failed",
                               FailureKind.of_exit(code))
        state = {JobStatus.PENDING: JobState.PENDING, JobStatus.RUNNING: JobState.RUNNING,
                 JobStatus.SUCCEEDED: JobState.SUCCEEDED,
                 JobStatus.STOPPED: JobState.CANCELLED}[info.status]
        # Ray enforces no timeout: the reader does, from Ray's start time (in ms)
        since = info.start_time / 1000 if info.start_time else None
        return Observation(state, None, running_since=since)

    def _refresh(self, record: JobRecord) -> JobRecord:
        sid = submission_id(record.id, record.attempt)
        try:
            info = self.client.get_job_info(sid)
        except ClusterError:
            return record  # unreachable now: keep what we know
        except Exception as err:
            if not _is_not_found(err):
                log.warning("could not read Ray job %s: %s", sid, err)
                return record
            info = None
        else:
            self._copy_progress(record)
        # not submitted yet: another process is submitting it (and may retry for
        # SUBMIT_RETRY_SECONDS), or died doing so; past that, submitting is this reader's
        return self.lifecycle.apply(record, self._observe(record, info), self,
                                    launch_grace=self.SUBMIT_RETRY_SECONDS + 10)

    # -- what the lifecycle asks of the backend (core.lifecycle.AttemptHooks) ------------

    def launch_attempt(self, record: JobRecord) -> None:
        self._launch(record)

    def stop_attempt(self, record: JobRecord) -> None:
        self._stop(submission_id(record.id, record.attempt), wait=10.0)

    def collect_attempt(self, record: JobRecord) -> None:
        return None  # the run directory is where the head wrote it

    def release_attempt(self, record: JobRecord) -> None:
        return None  # Ray keeps a finished job's record and logs; nothing else runs

    def attempt_outcome(self, record: JobRecord) -> dict[str, Any] | None:
        return read_outcome(self.home.run_dir(record.id), record.attempt)

    def _stop(self, sid: str, wait: float) -> None:
        """Stop a Ray job and wait (up to ``wait`` s) until Ray says it ended; a job Ray
        does not know (never submitted) needs no stopping."""
        from ray.job_submission import JobStatus

        try:
            self.client.stop_job(sid)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.client.get_job_status(sid) in (JobStatus.STOPPED, JobStatus.SUCCEEDED,
                                                       JobStatus.FAILED):
                    return
                time.sleep(0.2)
        except Exception as err:
            if not _is_not_found(err):
                raise ClusterError(f"could not stop Ray job {sid} on "
                                   f"{self.profile.address}: {err}") from None

    def _cancel(self, record: JobRecord, timeout: float) -> None:
        # terminal first, so no reader submits another attempt; then stop the attempt the
        # job was at (a reader that submitted one meanwhile stops it itself, above)
        self.store.request_cancel(record.id)
        self.store.transition(record.id, JobState.CANCELLED, "cancelled")
        attempt = self.store.get(record.id).attempt
        self._stop(submission_id(record.id, attempt), wait=timeout)

    # -- logs -----------------------------------------------------------------------------

    def _read_log(self, job_id: str, attempt: int, offset: int) -> bytes:
        try:
            text = self.client.get_job_logs(submission_id(job_id, attempt))
        except Exception:  # not started yet, or gone: nothing to show for now
            return b""
        return text.encode("utf-8")[offset:]

