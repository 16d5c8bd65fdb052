"""What a Kubernetes job's objects say about it, as shipyard states and reasons.

Pure functions over the objects' JSON (as the API returns them), so the mapping is
tested on its own and the backend only fetches. Three sources, most specific first:

- the resource's own status: a Job's conditions (``Complete``, ``Failed`` with
  ``BackoffLimitExceeded`` / ``DeadlineExceeded`` / ``PodFailurePolicy``), a DaskJob's
  ``status.jobStatus``, a RayJob's ``jobDeploymentStatus``/``jobStatus``/``reason``;
- its pods: why a container is waiting (``ImagePullBackOff``, ``ErrImagePull``,
  ``CreateContainerConfigError``, ...), why it ended (``OOMKilled``, its exit code),
  ``Unschedulable`` from the scheduling condition, a pod's ``DeadlineExceeded``;
- the pods' warning events (``FailedScheduling``, ``FailedMount``, ``Failed``).

A job is never silently PENDING: when a pod cannot start, the reason says why.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shipyard.backends.kubernetes.render import LABEL_ROLE
from shipyard.core.lifecycle import Observation
from shipyard.core.states import FailureKind, JobState

__all__ = ["observe", "pod_problem", "pod_failure"]


#: Waiting reasons that mean the container cannot start until someone fixes something.
STUCK_REASONS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
                 "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff",
                 "RunContainerError"}
_WARNING_EVENTS = {"FailedScheduling", "FailedMount", "FailedAttachVolume", "Failed",
                   "FailedCreatePodSandBox", "BackOff", "FailedCreate"}


def _one_line(text: str | None, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _container_statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or [])


def pod_problem(pod: dict[str, Any], events: list[dict[str, Any]] = ()) -> str | None:
    """Why a pod that has not run yet cannot start, or None if nothing is wrong.

    Examples
    --------
    >>> pod_problem({"status": {"containerStatuses": [{"name": "runner", "state": {
    ...     "waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image x"}}}]}})
    'ImagePullBackOff: Back-off pulling image x'
    >>> pod_problem({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
    ...     "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}})
    'Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.'
    """
    for container in _container_statuses(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            return f"{waiting['reason']}: {_one_line(waiting.get('message'))}".rstrip(": ")
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                and condition.get("reason")):
            return f"{condition['reason']}: {_one_line(condition.get('message'))}".rstrip(": ")
    warnings = [e for e in events if e.get("type") == "Warning"
                and e.get("reason") in _WARNING_EVENTS]
    if warnings:
        last = max(warnings, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return f"{last['reason']}: {_one_line(last.get('message'))}".rstrip(": ")
    return None


def pod_failure(pod: dict[str, Any]) -> tuple[str, FailureKind] | None:
    """Why a pod's run ended badly (its runner's termination), or None if it did not.

    Examples
    --------
    >>> pod_failure({"status": {"phase": "Failed", "containerStatuses": [{"name": "runner",
    ...     "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}})
    ('OOMKilled (exit code 137): the container ran out of its memory limit', <FailureKind.ERROR: 'error'>)
    """
    status = pod.get("status") or {}
    if status.get("reason") == "DeadlineExceeded":
        return (f"timeout: {_one_line(status.get('message')) or 'the pod ran past its deadline'}",
                FailureKind.TIMEOUT)
    if status.get("reason") == "Evicted":
        return f"Evicted: {_one_line(status.get('message'))}", FailureKind.CLUSTER
    for container in _container_statuses(pod):
        terminated = ((container.get("state") or {}).get("terminated")
                      or (container.get("lastState") or {}).get("terminated") or {})
        code = terminated.get("exitCode")
        if not terminated or code == 0:
            continue
        reason = terminated.get("reason") or "Error"
        if reason == "OOMKilled":
            return (f"OOMKilled (exit code {code}): the container ran out of its memory limit",
                    FailureKind.ERROR)
        detail = _one_line(terminated.get("message"))
        text = f"{reason} (exit code {code})" + (f": {detail}" if detail else "")
        return text, FailureKind.of_exit(code)
    return None


def _pods_view(pods: list[dict[str, Any]], events: dict[str, list[dict[str, Any]]],
               resource_name: str | None = None
               ) -> tuple[bool, str | None, tuple[str, FailureKind] | None]:
    """(the runner is running, why some pod cannot start, why the latest failed runner
    failed). Only runner pods say whether the job runs or failed (a DaskJob's scheduler
    running is not the job running; an evicted worker is not the job failing); any pod
    that cannot start is a reason. With no pod at all, the resource's own warnings are
    (a quota that refuses pods, an operator that rejects the resource)."""
    # every pod of a job says its role (render.py labels the DaskJob's scheduler and
    # workers too: the operator copies the DaskJob's own labels onto them, so a pod
    # without a role is not a runner but a pod someone else labelled)
    runners = [p for p in pods
               if (p["metadata"].get("labels") or {}).get(LABEL_ROLE) == "runner"]
    running = any((p.get("status") or {}).get("phase") == "Running" for p in runners)
    problem = None
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in (None, "Pending"):
            problem = problem or pod_problem(pod, events.get(pod["metadata"]["name"], []))
    if not pods and resource_name:
        problem = pod_problem({}, events.get(resource_name, []))
    failed = [p for p in runners if (p.get("status") or {}).get("phase") == "Failed"]
    failure = None
    if failed:
        latest = max(failed, key=lambda p: p["metadata"].get("creationTimestamp") or "")
        failure = pod_failure(latest)
    return running, problem, failure


def _conditions(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type"): c for c in (resource.get("status") or {}).get("conditions") or []
            if c.get("status") == "True"}


def _job(resource, running, problem, failure) -> Observation:
    status = resource.get("status") or {}
    failed = int(status.get("failed") or 0)
    conditions = _conditions(resource)
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        return Observation(JobState.SUCCEEDED, "completed", failed_attempts=failed)
    fail = conditions.get("Failed") or conditions.get("FailureTarget")
    if fail:
        cause = fail.get("reason") or "Failed"
        if cause == "DeadlineExceeded":
            return Observation(JobState.FAILED, "timeout: the job ran past its activeDeadlineSeconds",
                            FailureKind.TIMEOUT, failed)
        if failure:
            return Observation(JobState.FAILED, failure[0], failure[1], failed)
        return Observation(JobState.FAILED, f"{cause}: {_one_line(fail.get('message'))}",
                        FailureKind.ERROR, failed)
    if running:
        return Observation(JobState.RUNNING, None, failed_attempts=failed)
    return Observation(JobState.PENDING, problem, failed_attempts=failed, stuck=bool(problem))


def _dask_job(resource, running, problem, failure) -> Observation:
    phase = (resource.get("status") or {}).get("jobStatus")
    if phase == "Successful":
        return Observation(JobState.SUCCEEDED, "completed")
    if phase == "Failed":
        reason, kind = failure or ("the runner pod failed", FailureKind.ERROR)
        return Observation(JobState.FAILED, reason, kind, failed_attempts=1)
    if phase == "Running" or running:
        return Observation(JobState.RUNNING, problem)
    return Observation(JobState.PENDING, problem or (f"DaskJob {phase}" if phase else None),
                    stuck=bool(problem))


_RAY_PENDING = {None, "", "New", "Initializing", "Waiting", "Suspending", "Suspended",
                "Retrying"}


def _ray_job(resource, running, problem, failure) -> Observation:
    status = resource.get("status") or {}
    deployment = status.get("jobDeploymentStatus")
    ray_status = status.get("jobStatus")
    failed = int(status.get("failed") or 0)
    message = _one_line(status.get("message"))
    if ray_status == "STOPPED":
        return Observation(JobState.CANCELLED, "the Ray job was stopped", failed_attempts=failed)
    if deployment == "Complete" and ray_status == "SUCCEEDED":
        return Observation(JobState.SUCCEEDED, "completed", failed_attempts=failed)
    if deployment in ("Failed", "ValidationFailed") or (deployment == "Complete"
                                                        and ray_status == "FAILED"):
        cause = status.get("reason") or deployment
        if cause == "DeadlineExceeded":
            return Observation(JobState.FAILED, f"timeout: {message or 'activeDeadlineSeconds'}",
                            FailureKind.TIMEOUT, max(failed, 1))
        kind = FailureKind.CLUSTER if deployment == "ValidationFailed" else FailureKind.ERROR
        if failure and failure[1] is not FailureKind.ERROR:
            kind = failure[1]
        return Observation(JobState.FAILED, f"{cause}: {message}".rstrip(": "), kind,
                        max(failed, 1))
    if deployment == "Running" and ray_status in ("RUNNING", "SUCCEEDED", "FAILED"):
        return Observation(JobState.RUNNING, None, failed_attempts=failed)
    if deployment in _RAY_PENDING or deployment == "Running":
        reason = problem or (f"RayJob {deployment}" if deployment else None)
        return Observation(JobState.PENDING, reason, failed_attempts=failed, stuck=bool(problem))
    return Observation(JobState.PENDING, f"RayJob {deployment}", failed_attempts=failed)


_OBSERVERS = {"Job": _job, "DaskJob": _dask_job, "RayJob": _ray_job}


def observe(kind: str, resource: dict[str, Any], pods: list[dict[str, Any]],
            events: dict[str, list[dict[str, Any]]] | None = None) -> Observation:
    """The job's state as ``resource`` (a Job, DaskJob or RayJob), its pods and their
    events (by pod name) describe it.

    Examples
    --------
    >>> observe("Job", {"status": {"failed": 1, "conditions": [{"type": "Failed",
    ...     "status": "True", "reason": "DeadlineExceeded"}]}}, []).failure_kind
    <FailureKind.TIMEOUT: 'timeout'>
    >>> observe("RayJob", {"status": {"jobDeploymentStatus": "Running",
    ...                               "jobStatus": "RUNNING"}}, []).state
    <JobState.RUNNING: 'RUNNING'>
    """
    name = (resource.get("metadata") or {}).get("name")
    running, problem, failure = _pods_view(pods, events or {}, name)
    seen = _OBSERVERS[kind](resource, running, problem, failure)
    if seen.state is JobState.PENDING and not pods:
        # nothing has started: the controller or operator has not created a pod (yet)
        return replace(seen, reason=seen.reason or "waiting for its pods to be created",
                       stuck=True)
    return seen
