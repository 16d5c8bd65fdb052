"""The ``kubernetes`` backend: each job is a DaskJob, RayJob or batch/v1 Job on a cluster.

``--cluster NAME`` with a profile that says ``backend: kubernetes`` (``cluster/kubernetes.yaml``
documents every setting). The backend talks to the API server through
:mod:`~shipyard.backends.kubernetes.client` (credentials, bounded and retried requests),
renders the resources with :mod:`~shipyard.backends.kubernetes.render` and reads their
state with :mod:`~shipyard.backends.kubernetes.status`; what follows is its own part.

- **Submitting** creates the workload's resource, then its spec ConfigMap (owned by the
  resource, so Kubernetes deletes both). Names follow from the job id, so creating the same
  attempt twice finds the first one (409 -> already submitted) instead of a second one.
- **Retries**: a Job retries itself (``backoffLimit``); the store's attempt follows its
  failure count. A DaskJob has no retries of its own and a RayJob's would rerun bad
  input, so each of their attempts is a resource (``<name>-a<n>``) that the reader who
  sees the previous attempt fail creates, guarded by the attempt number as the ``ray``
  backend does.
- **Timeouts** count from the start of the run: a Job's and a DaskJob's runner pod has
  ``activeDeadlineSeconds``; a RayJob's deadline also counts its cluster's provisioning
  (see :mod:`shipyard.backends.kubernetes.render`), so the reader that sees its Ray job running
  past ``spec.timeout`` stops it, as the ``ray`` backend does.
- **States** come from :mod:`shipyard.backends.kubernetes.status` (conditions, pods, events); a
  pod that cannot start (image pull, scheduling) puts its reason on the PENDING job, and
  after the profile's ``start_timeout`` fails it, rather than leaving it pending forever.
- **Results**: the runner in the pod keeps its run directory in the profile's object
  store (:mod:`shipyard.core.run_storage`); when the job ends it is copied into the local
  run directory, with the runner pods' logs, so ``result`` and ``logs`` work after
  Kubernetes has cleaned up.
- **Cancel** deletes the resource and its ConfigMap with foreground propagation.
- An API that keeps failing is reported (exit 3) after ``UNREACHABLE_LIMIT``; until then
  reads keep the states they know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
import math
import logging
import time
from typing import Any

from shipyard.backends.base import Backend
from shipyard.core.atomic import write_text_atomic
from shipyard.core.lifecycle import Observation, run_time_left
from shipyard.backends.kubernetes.render import (
    ANNOTATION_JOB_ID, LABEL_ATTEMPT, LABEL_JOB, LABEL_ROLE, PER_ATTEMPT, kept_output as kept_url,
    redirect_local_outputs, render, resource_kind, resource_name, submission_warnings,
)
from shipyard.backends.kubernetes.client import KubernetesClient
from shipyard.backends.kubernetes.settings import KubernetesSettings, kubernetes_settings
from shipyard.backends.kubernetes.status import observe
from shipyard.core.errors import ClusterError
from shipyard.core.home import RunDir, attempt_log_path, read_outcome
from shipyard.core.states import JobState
from shipyard.core.store import JobRecord

__all__ = ["KubernetesBackend"]

log = logging.getLogger("shipyard.kubernetes")

#: profile name -> when its API started failing (monotonic), while it fails
_FAILING_SINCE: dict[str, float] = {}


class KubernetesBackend(Backend):
    """Jobs as Kubernetes resources (see the module docstring)."""

    name = "kubernetes"
    #: the longest a reader waits on one watch before looking again
    WATCH_SECONDS = 10
    #: `logs --follow` reads the pod's whole log each time: not every 0.2s
    LOG_POLL_SECONDS = 1.0

    #: after a failed read, how long this process keeps the known states without asking,
    #: and how long the API may fail before reads say so (exit 3)
    UNREACHABLE_SECONDS = 10.0
    UNREACHABLE_LIMIT = 120.0
    #: an attempt not created a minute after it was due is created by the reader
    LAUNCH_GRACE_SECONDS = 60.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._quiet_until = 0.0
        #: job id -> the resourceVersion of its resource as this process last read it
        self._read_versions: dict[str, str] = {}

    # -- settings and the API client ---------------------------------------------------------

    def _settings(self, record: JobRecord | None = None) -> KubernetesSettings:
        """The profile's settings: from the profile when submitting, else those the job
        was submitted with (kept in its run directory)."""
        if self.profile.settings or record is None:
            return kubernetes_settings(self.profile.name, self.profile.settings)
        run_dir = self.home.run_dir(record.id)
        try:
            return KubernetesSettings.model_validate(run_dir.side("kubernetes"))
        except ValueError as err:
            raise ClusterError(f"job {record.id}: its Kubernetes settings "
                               f"({run_dir / run_dir.SIDE}) cannot be read: {err}") from None

    def _client(self, settings: KubernetesSettings) -> KubernetesClient:
        return KubernetesClient(settings, self.profile.name)

    # -- the resources of a job ----------------------------------------------------------------

    def _spec(self, record: JobRecord):
        from shipyard.spec import load

        # the spec as submitted; its entrypoints were checked then, on this machine
        return load(self.home.run_dir(record.id).spec, check_references=False)

    def _kind(self, record: JobRecord) -> str:
        if record.external_id and "/" in record.external_id:
            return record.external_id.split("/", 1)[0]
        return resource_kind(self._spec(record))

    def _name(self, record: JobRecord, kind: str) -> str:
        # DaskJobs and RayJobs have one resource per attempt; a Job retries in place
        return resource_name(record.id, record.attempt if kind in PER_ATTEMPT else 1)

    # -- submitting -----------------------------------------------------------------------------

    def _check_reachable(self) -> None:
        from kubernetes import client

        settings = self._settings()
        self._client(settings).call("read the server version", client.VersionApi(self._client(settings).api).get_code)

    def _scheduler_address(self) -> str | None:
        return None

    def _launch(self, record: JobRecord) -> None:
        from kubernetes import client

        run_dir = self.home.run_dir(record.id)
        settings = self._settings(record)
        if run_dir.side("kubernetes") is None:
            run_dir.set_side("kubernetes", settings.model_dump(mode="json"))
        spec = self._spec(record)
        code = run_dir.side("code")
        if code is not None:
            self._upload_code(settings, code)
        config_map, resource = render(spec, settings, record.id, record.attempt,
                                      code_digest=code["digest"] if code else None)
        kind, name = resource["kind"], resource["metadata"]["name"]
        api = self._client(settings)
        calls = api.resources(kind)
        if api.call(f"create {kind} {name}", calls.create, resource,
                    conflict_ok=True) == "conflict":
            existing = api.plain(api.call(f"read {kind} {name}", calls.get, name))
            owner = (existing.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_JOB_ID)
            if owner != record.id:
                raise ClusterError(f"a {kind} named {name} already exists in namespace "
                                   f"{settings.namespace!r} and belongs to {owner or 'someone else'}")
            log.info("%s %s already exists; not creating it again", kind, name)
        created = api.plain(api.call(f"read {kind} {name}", calls.get, name))
        uid = created.get("metadata", {}).get("uid")
        if uid:
            # deleted with its resource (TTL, cancel), by Kubernetes' garbage collector
            config_map["metadata"]["ownerReferences"] = [{
                "apiVersion": resource["apiVersion"], "kind": kind, "name": name, "uid": uid,
                "blockOwnerDeletion": False}]
        core = client.CoreV1Api(api.api)
        try:
            api.call(f"create ConfigMap {config_map['metadata']['name']}",
                     core.create_namespaced_config_map, settings.namespace, config_map,
                     conflict_ok=True)
        except ClusterError:
            # a resource without its spec would only wait for it: take it back
            self._delete(settings, record)
            raise
        self.store.update(record.id, external_id=f"{kind}/{name}")
        self.store.note(record.id, f"created {kind} {name} in namespace {settings.namespace}",
                        record.attempt)
        if record.attempt == 1:
            self._submission_notes(spec, settings, record, kind)

    def _upload_code(self, settings: KubernetesSettings, code: dict[str, Any]) -> None:
        """Put the job's code package in the profile's storage, where its pods fetch it
        (once per content: a package already there is not sent again)."""
        import fsspec

        url = settings.storage.code_url(code["digest"])
        try:
            fs, path = fsspec.core.url_to_fs(url, **settings.storage.options)
            if not fs.exists(path):
                fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                fs.put_file(code["zip"], path)
        except Exception as err:
            raise ClusterError(f"could not store the job's code package at {url}: "
                               f"{type(err).__name__}: {err}") from None

    def _ships_code(self, cluster_address: str | None) -> bool:
        return True  # pods see the image and the object store, not this machine

    def kept_output(self, job_id: str, path: str) -> str:
        return kept_url(self._settings(), job_id, path)

    def _submission_notes(self, spec, settings: KubernetesSettings, record: JobRecord,
                          kind: str) -> None:
        """What the user should know about where this spec runs: inputs the pods cannot
        read, outputs the workers write to object storage, GPUs the image cannot use."""
        for warning in submission_warnings(spec, settings):
            log.warning("warning: %s", warning)
            self.store.note(record.id, f"warning: {warning}", record.attempt)
        if kind == "DaskJob":
            for moved in redirect_local_outputs(spec, settings, record.id)[1]:
                note = (f"{moved} (the worker pods write it; their disks go with them)")
                log.warning("note: %s", note)
                self.store.note(record.id, f"note: {note}", record.attempt)

    # -- watching -------------------------------------------------------------------------------

    def _pods(self, settings: KubernetesSettings, record: JobRecord, kind: str,
              role: str | None = None) -> list[dict[str, Any]]:
        from kubernetes import client

        selector = f"{LABEL_JOB}={resource_name(record.id)}"
        if kind in PER_ATTEMPT:
            selector += f",{LABEL_ATTEMPT}={record.attempt}"
        if role:
            selector += f",{LABEL_ROLE}={role}"
        core = client.CoreV1Api(self._client(settings).api)
        pods = self._client(settings).call("list the job's pods", core.list_namespaced_pod,
                          settings.namespace, label_selector=selector)
        items = self._client(settings).plain(pods).get("items") or []
        return sorted(items, key=lambda p: p["metadata"].get("creationTimestamp") or "")

    def _events(self, settings: KubernetesSettings, pods: list[dict[str, Any]],
                resource: str) -> dict[str, list[dict[str, Any]]]:
        """Warning events of the pods that have not started (where the reason lives), or
        of the resource itself while it has no pod (a quota refusing them)."""
        from kubernetes import client

        core = client.CoreV1Api(self._client(settings).api)
        events = {}
        names = [p["metadata"]["name"] for p in pods
                 if (p.get("status") or {}).get("phase") in (None, "Pending")]
        for name in names if pods else [resource]:
            found = self._client(settings).call("list the job's events", core.list_namespaced_event,
                               settings.namespace,
                               field_selector=f"involvedObject.name={name},type=Warning")
            events[name] = self._client(settings).plain(found).get("items") or []
        return events

    def _observe(self, settings: KubernetesSettings, record: JobRecord
                 ) -> tuple[Observation | None, str]:
        kind = self._kind(record)
        name = self._name(record, kind)
        resource = self._client(settings).call(f"read {kind} {name}",
                              self._client(settings).resources(kind).get, name, missing_ok=True)
        if resource is None:
            return None, kind
        resource = self._client(settings).plain(resource)
        version = (resource.get("metadata") or {}).get("resourceVersion")
        if version:
            self._read_versions[record.id] = version
        pods = self._pods(settings, record, kind)
        return observe(kind, resource, pods, self._events(settings, pods, name)), kind

    def _refresh(self, record: JobRecord) -> JobRecord:
        if time.monotonic() < self._quiet_until:
            return record  # the API failed a moment ago: `list` should not wait on it per job
        try:
            settings = self._settings(record)
            seen, kind = self._observe(settings, record)
        except ClusterError as err:
            return self._unreachable(record, err)
        _FAILING_SINCE.pop(self.profile.name, None)
        if seen is None:
            seen = Observation(None, f"its {kind} {self._name(record, kind)} no longer exists "
                                     f"and left no results in "
                                     f"{settings.storage.run_url(record.id)} (deleted outside "
                                     "shipyard?)")
        else:
            self._copy_progress(settings, record)
            # a Job runs its next attempt itself; a RayJob's deadline also counts its
            # cluster's start, so its run's timeout is the reader's (see the docstring)
            seen = replace(seen, retries_itself=kind not in PER_ATTEMPT,
                           running_since=math.nan if kind == "RayJob" else None)
        return self.lifecycle.apply(record, seen, _Attempts(self, settings, kind),
                                    start_timeout=settings.start_timeout,
                                    launch_grace=self.LAUNCH_GRACE_SECONDS)

    def _unreachable(self, record: JobRecord, err: ClusterError) -> JobRecord:
        """Keep the known state while the API fails for a moment; once it has failed for
        UNREACHABLE_LIMIT, say so (exit 3) instead of letting `wait` go on forever."""
        log.warning("%s", err)
        self._quiet_until = time.monotonic() + self.UNREACHABLE_SECONDS
        since = _FAILING_SINCE.setdefault(self.profile.name, time.monotonic())
        if time.monotonic() - since > self.UNREACHABLE_LIMIT:
            raise ClusterError(f"{err.message} (failing for {self.UNREACHABLE_LIMIT:.0f}s; job "
                               f"{record.id} is still recorded as {record.state})") from None
        return record

    def _run_time_left(self, record: JobRecord) -> float:
        """Seconds until a running attempt has run ``spec.timeout`` (inf without one),
        counted from when it was seen RUNNING."""
        if record.state is not JobState.RUNNING:
            return math.inf
        return run_time_left(record, self.lifecycle.since_last_move(record), time.time())

    def _start_time_left(self, settings: KubernetesSettings, record: JobRecord) -> float:
        """Seconds until a pending attempt has waited the profile's ``start_timeout``."""
        return settings.start_timeout - (time.time() - self.lifecycle.since_last_move(record))

    def _await_change(self, record: JobRecord, poll: float, limit: float) -> None:
        """Watch the job's resource until it changes (or ``limit``/WATCH_SECONDS pass):
        one open request instead of a read every ``poll``. A watch the server drops or
        refuses ends the wait early; the caller reads the job again either way."""
        from kubernetes import watch

        settings = self._settings(record)
        kind = self._kind(record)
        name = self._name(record, kind)
        longest = min(limit, self.WATCH_SECONDS)
        if record.state is JobState.PENDING:
            # a pod that cannot start changes nothing the watch sees: read the job again
            # when its start_timeout runs out, not up to WATCH_SECONDS later
            longest = min(longest, self._start_time_left(settings, record))
        if kind == "RayJob":
            # a Ray job past its timeout changes nothing the watch sees either
            longest = min(longest, self._run_time_left(record))
        seconds = max(1, math.ceil(longest))
        calls = self._client(settings).resources(kind)
        # From the version last read: a change made between that read and this watch is
        # sent too (the server answers 410 Gone for a version too old: read again).
        read = self._read_versions.get(record.id)
        since = {"resource_version": read} if read else {}
        watcher = watch.Watch()
        started = time.monotonic()
        try:
            for event in watcher.stream(calls.lister, *calls.lister_args,
                                        field_selector=f"metadata.name={name}",
                                        timeout_seconds=seconds, **since,
                                        _request_timeout=(KubernetesClient.REQUEST_TIMEOUT[0], seconds + 5)):
                # ADDED is the object as it is now, sent first by a watch that starts from
                # no version: a change only if it is not the version last read
                now = ((event.get("raw_object") or {}).get("metadata") or {}).get(
                    "resourceVersion")
                if event.get("type") != "ADDED" or (read and now != read):
                    return
        except Exception as err:  # dropped, refused, timed out: read the job again
            log.debug("watch on %s %s ended: %s", kind, name, err)
        finally:
            watcher.stop()
        # no change seen: never spin on a watch that ends at once
        time.sleep(max(0.0, min(poll, limit) - (time.monotonic() - started)))

    # -- results --------------------------------------------------------------------------------

    def _storage(self, settings: KubernetesSettings, record: JobRecord):
        from shipyard.core.run_storage import RunStorage

        return RunStorage(settings.storage.run_url(record.id), settings.storage.options)

    def _copy_progress(self, settings: KubernetesSettings, record: JobRecord) -> None:
        try:
            storage = self._storage(settings, record)
            progress = json.loads(storage.fs.cat_file(f"{storage.root}/{RunDir.PROGRESS}"))
        except Exception:  # not written yet, or the store unreachable: progress can wait
            return
        self.lifecycle.copy_progress(record, progress)

    def fetch_results(self, record: JobRecord) -> None:
        """Copy the job's results from the object store into its run directory."""
        settings = self._settings(record)
        try:
            self._storage(settings, record).download(self.home.run_dir(record.id))
        except Exception as err:
            log.warning("could not copy job %s's results from %s: %s", record.id,
                        settings.storage.run_url(record.id), err)

    def _runner_pods(self, settings: KubernetesSettings, record: JobRecord, attempt: int):
        kind = self._kind(record)
        probe = record if kind not in PER_ATTEMPT else _at_attempt(record, attempt)
        pods = self._pods(settings, probe, kind, role="runner")
        if kind in PER_ATTEMPT:
            return pods
        # A Job's retries are pods of the same Job, oldest first; a pod that a disruption
        # (a drain, a preemption) ended is replaced without counting as an attempt (the
        # podFailurePolicy's Ignore rule), so it does not count here either
        counted = [p for p in pods if not _disrupted(p)]
        return counted[attempt - 1: attempt]

    def _pod_log(self, settings: KubernetesSettings, pod: dict[str, Any]) -> bytes:
        from kubernetes import client

        core = client.CoreV1Api(self._client(settings).api)
        container = pod["spec"]["containers"][0]["name"]
        response = self._client(settings).call("read the runner's log", core.read_namespaced_pod_log,
                              pod["metadata"]["name"], settings.namespace, container=container,
                              missing_ok=True, _preload_content=False)
        return response.data if response is not None else b""

    def _save_logs(self, settings: KubernetesSettings, record: JobRecord) -> None:
        run_dir = self.home.run_dir(record.id)
        for attempt in range(1, record.attempt + 1):
            path = attempt_log_path(run_dir, attempt)
            if path.exists():
                continue
            pods = self._runner_pods(settings, record, attempt)
            if pods:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(path, self._pod_log(settings, pods[-1]).decode(
                    "utf-8", errors="replace"))

    def _read_log(self, job_id: str, attempt: int, offset: int) -> bytes:
        saved = attempt_log_path(self.home.run_dir(job_id), attempt)
        if saved.exists():
            return saved.read_bytes()[offset:]
        record = self.store.get(job_id)
        try:
            settings = self._settings(record)
            pods = self._runner_pods(settings, record, attempt)
            return self._pod_log(settings, pods[-1])[offset:] if pods else b""
        except ClusterError as err:
            log.warning("%s", err)
            return b""

    # -- cancelling -----------------------------------------------------------------------------

    def _delete(self, settings: KubernetesSettings, record: JobRecord,
                wait: float = 0.0) -> None:
        """Delete the attempt's resource and ConfigMap (foreground: its pods go first)."""
        from kubernetes import client

        kind = self._kind(record)
        name = self._name(record, kind)
        calls = self._client(settings).resources(kind)
        self._client(settings).call(f"delete {kind} {name}", calls.delete, name, missing_ok=True)
        core = client.CoreV1Api(self._client(settings).api)
        self._client(settings).call(f"delete ConfigMap {name}-spec", core.delete_namespaced_config_map,
                   f"{name}-spec", settings.namespace, missing_ok=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._client(settings).call(f"read {kind} {name}", calls.get, name,
                          missing_ok=True) is None:
                return
            time.sleep(0.2)

    def _cancel(self, record: JobRecord, timeout: float) -> None:
        # flagged first, so no reader creates another attempt; deleted, and only then
        # CANCELLED (a delete that fails leaves the job cancellable again, exit 3); then the
        # attempt the job is at now, in case a reader created one meanwhile
        self.store.request_cancel(record.id)
        settings = self._settings(record)
        record = self.store.get(record.id)
        try:
            self._save_logs(settings, record)  # what it printed, before its pods go
        except ClusterError as err:
            log.warning("could not save job %s's pod logs: %s", record.id, err)
        self._delete(settings, record, wait=timeout)
        self.store.transition(record.id, JobState.CANCELLED, "cancelled")
        now = self.store.get(record.id)
        if now.attempt != record.attempt:
            self._delete(settings, now, wait=timeout)

    def _describe(self) -> dict[str, Any]:
        settings = self._settings()
        info = {"name": self.profile.name, "backend": self.name, "up": False,
                "address": None, "namespace": settings.namespace}
        try:
            info["address"] = self._client(settings).api.configuration.host
            self._check_reachable()
            info["up"] = True
        except ClusterError as err:
            info["error"] = err.message
        return info


@dataclass(frozen=True)
class _Attempts:
    """The backend's hands for :meth:`~shipyard.core.lifecycle.Lifecycle.apply`, for one
    job's resource kind under one profile's settings."""

    backend: KubernetesBackend
    settings: KubernetesSettings
    kind: str

    def launch_attempt(self, record: JobRecord) -> None:
        self.backend._launch(record)

    def stop_attempt(self, record: JobRecord) -> None:
        self.backend._delete(self.settings, record)

    def collect_attempt(self, record: JobRecord) -> None:
        """The run's results and the runner pods' logs, here before Kubernetes deletes
        them (a failure to save the logs is logged: the job's state is known either way,
        and ``result`` fetches the results again)."""
        self.backend.fetch_results(record)
        try:
            self.backend._save_logs(self.settings, record)
        except ClusterError as err:
            log.warning("could not save job %s's pod logs: %s", record.id, err)

    def release_attempt(self, record: JobRecord) -> None:
        """A finished DaskJob or RayJob is deleted: neither has a TTL of its own
        (KubeRay's removes only the Ray cluster); a Job has its ttlSecondsAfterFinished."""
        if self.kind in PER_ATTEMPT:
            try:
                self.backend._delete(self.settings, record)
            except ClusterError as err:
                log.warning("could not delete job %s's %s: %s", record.id, self.kind, err)

    def attempt_outcome(self, record: JobRecord) -> dict[str, Any] | None:
        return read_outcome(self.backend.home.run_dir(record.id), record.attempt)


def _disrupted(pod: dict[str, Any]) -> bool:
    """Whether Kubernetes ended the pod for a disruption (its ``DisruptionTarget``
    condition), which a Job's podFailurePolicy does not count as a failed attempt."""
    return any(c.get("type") == "DisruptionTarget" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _at_attempt(record: JobRecord, attempt: int) -> JobRecord:
    from dataclasses import replace

    return replace(record, attempt=attempt)
