"""The Python API of the job layer; the CLI is a thin shell over it.

Examples
--------
Submit the demo job with a smaller size, wait, and read its result::

    import shipyard

    job = shipyard.submit("jobs/basics.yaml", overrides=["spec.python.params.rows=1000"])
    job.wait().state               # JobState.SUCCEEDED
    job.result()["value"]["rows"]  # 1000
    for line in job.logs():
        print(line)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from shipyard.backends import get_backend
from shipyard.backends.profiles import backend_of
from shipyard.core.errors import JobFailedError, UsageError
from shipyard.core.home import Home, RunDir
from shipyard.core.states import FailureKind, JobState
from shipyard.core.store import JobEvent, JobRecord, JobStore
from shipyard.core.tracker import Tracker

__all__ = ["Job", "submit", "run", "resume", "render", "get_job", "list_jobs",
           "list_statuses", "exit_code_for"]

def _open(home: str | os.PathLike | Home | None) -> tuple[Home, JobStore]:
    resolved = home if isinstance(home, Home) else Home.from_env(home)
    return resolved, JobStore(resolved.db)


def _tracker_for(record: JobRecord, home: Home, store: JobStore) -> Tracker:
    if record.kind == "pipeline":
        from shipyard.backends.profiles import resolve_cluster
        from shipyard.pipelines.tracker import PipelineTracker

        return PipelineTracker(resolve_cluster(record.cluster, home.clusters), home, store)
    return backend_of(record, home, store)


def exit_code_for(record: JobRecord) -> int:
    """The CLI exit code for a finished job: 0 succeeded, 2 bad input, 3 cluster, else 1."""
    if record.state is JobState.SUCCEEDED:
        return 0
    return FailureKind(record.failure_kind or "error").exit_code


class Job:
    """A handle on a submitted job.

    Parameters
    ----------
    job_id : str
    home : path or Home, optional
        ``SHIPYARD_HOME`` (default: the environment variable, then ``~/.shipyard``).
    """

    def __init__(self, job_id: str, home: str | os.PathLike | Home | None = None):
        self.id = job_id
        self.home, self._store = _open(home)

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    @property
    def is_pipeline(self) -> bool:
        """Whether this is a pipeline run (its stages are jobs of their own)."""
        return self._store.get(self.id).kind == "pipeline"

    def stages(self) -> list[dict[str, Any]]:
        """A pipeline's stages (state, cached, job id, wall time), in spec order; [] for
        a job."""
        from shipyard.pipelines.store import stages

        return [stage.to_status() for stage in stages(self._store, self.id)]

    def status_document(self) -> dict[str, Any]:
        """The ``status --json`` object; a pipeline's has its ``stages`` too."""
        record = self.status()
        status = record.to_status()
        if record.kind == "pipeline":
            status["kind"] = "pipeline"
            status["stages"] = {s.pop("name"): s for s in self.stages()}
        return status

    @property
    def run_dir(self) -> RunDir:
        """``$SHIPYARD_HOME/runs/<id>``: spec, logs, result, report, artifacts."""
        return self.home.run_dir(self.id)

    def _tracker(self, record: JobRecord) -> Tracker:
        return _tracker_for(record, self.home, self._store)

    def status(self) -> JobRecord:
        """The job's current record (state, reason, attempt, progress, times)."""
        record = self._store.get(self.id)
        return self._tracker(record).refresh(record) if not record.state.is_terminal() else record

    @property
    def state(self) -> JobState:
        return self.status().state

    def wait(self, timeout: float | None = None, poll: float = 0.1) -> JobRecord:
        """Block until the job ends; return its final record.

        Raises
        ------
        TimeoutError
            If ``timeout`` seconds pass first (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.status()
            if record.state.is_terminal():
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} is still {record.state} after {timeout:g}s")
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._tracker(record).await_change(record, poll, left)

    def logs(self, follow: bool = False) -> Iterator[str]:
        """The job's log lines (every attempt); with ``follow``, until the job ends."""
        return self._tracker(self._store.get(self.id)).logs(self.id, follow=follow)

    def cancel(self, timeout: float = 5.0) -> JobRecord:
        """Cancel the job and end everything it started; a finished job is left as it is."""
        record = self._store.get(self.id)
        return self._tracker(record).cancel(record, timeout=timeout)

    def events(self) -> list[JobEvent]:
        """The job's event log: every state change and note, oldest first."""
        return self._store.events(self.id)

    def report(self) -> Path:
        """The job's HTML report, ``runs/<id>/report/index.html``.

        The runner writes it when an attempt ends. It is written again here when the
        runner left none (killed, out of memory) and when the job ended other than
        SUCCEEDED, so the page states how the whole job ended; a running job's page shows
        how far it has got.
        """
        from shipyard.runtime.reporting import report_path, write_job_report

        record = self.status()
        path = report_path(self.run_dir)
        if record.kind == "pipeline":
            if record.state.is_terminal() and path.is_file():
                return path
            return self._write_pipeline_results(record)
        if record.state is JobState.SUCCEEDED:
            if not self.run_dir.result.is_file():
                self._tracker(record).fetch_results(record)
            if path.is_file():
                return path
        elif not record.state.is_terminal() and path.is_file():
            return path
        return write_job_report(
            self.run_dir, job_id=record.id, state=record.state.value, attempt=record.attempt,
            reason=record.reason, cluster=record.cluster,
            started_at=record.started_at, finished_at=record.finished_at,
            log_path=self.home.attempt_log(record.id, record.attempt))

    def _write_pipeline_results(self, record: JobRecord) -> Path:
        """Write a pipeline's report (and its ``result.json`` once it has ended) from its
        stages: for a run whose driver left none (lost, or cancelled without it), or a
        page asked for while it runs. Returns the page's path."""
        from shipyard.pipelines.driver import read_options, sample_dir_of
        from shipyard.pipelines.results import write_pipeline_results
        from shipyard.spec import load

        spec = load(self.run_dir.spec, check_references=False,
                    base_dir=record.spec_dir)
        return write_pipeline_results(
            self.home, self.id, spec, record.state.value, record.reason,
            sample_dir_of(self.run_dir, read_options(self.run_dir)))

    def result(self, *, failed: bool = False) -> dict[str, Any]:
        """The job's ``result.json``.

        A job has one once it SUCCEEDED. A pipeline has one however it ended: its
        ``state``, and each stage's state, reason and (where it succeeded) result.

        Parameters
        ----------
        failed : bool
            Return a pipeline's result even if it ended FAILED or CANCELLED (``shipyard
            result`` does) rather than raise. A job that did not succeed has none either way.

        Raises
        ------
        JobFailedError
            If the job ended FAILED or CANCELLED (a pipeline: unless ``failed``).
        UsageError
            If the job has not finished yet.
        """
        record = self.status()
        if not record.state.is_terminal():
            raise UsageError(f"{record.kind} {self.id} is still {record.state}; it has no "
                             f"result yet (`shipyard wait {self.id}` waits for it)")
        path = self.run_dir.result
        if record.kind == "pipeline":
            if record.state is not JobState.SUCCEEDED and not failed:
                raise JobFailedError(
                    f"pipeline {self.id} ended {record.state} ({record.reason}); its "
                    f"result says how each stage ended (`shipyard result {self.id}`)")
            if not path.is_file():
                self._write_pipeline_results(record)
            return json.loads(path.read_text())
        if record.state is not JobState.SUCCEEDED:
            raise JobFailedError(f"job {self.id} ended {record.state} ({record.reason}); "
                                 f"it has no result")
        if not path.is_file():
            self._tracker(record).fetch_results(record)
        return json.loads(path.read_text())


def _as_spec(spec: Any, overrides: Iterable[str] | Mapping[str, Any], *,
             check_inputs: bool = True):
    from shipyard.spec.pipeline import PipelineSpec
    from shipyard.spec import JobSpec, load

    if isinstance(spec, (JobSpec, PipelineSpec)):
        if not overrides:
            return spec
        reloaded = load(spec.to_dict(), overrides, base_dir=spec.base_dir,
                        check_inputs=check_inputs)
        reloaded._source = spec.source
        return reloaded
    return load(spec, overrides, check_inputs=check_inputs)


def submit(spec: Any, cluster: str | None = None,
           overrides: Iterable[str] | Mapping[str, Any] = (), *,
           home: str | os.PathLike | Home | None = None, sample: float | None = None,
           no_cache: bool = False, from_stage: str | None = None) -> Job:
    """Validate a spec and submit it; return at once with a :class:`Job`.

    Parameters
    ----------
    spec : path, mapping, JobSpec or PipelineSpec
        The job or pipeline spec (a YAML file, the same structure as a dict, or a
        loaded spec).
    cluster : str, optional
        A cluster profile name or ``tcp://host:port``; default ``spec.cluster``, then ``local``.
    overrides : iterable of ``"path=value"``, or mapping
        As ``--set``.
    home : path, optional
        ``SHIPYARD_HOME``.
    sample : float, optional
        A trial run: the whole pipeline (or job) on this share of each input, on the
        local cluster, outputs kept in the run directory.
    no_cache : bool
        Pipelines: run every stage even where a cached result would do.
    from_stage : str, optional
        Pipelines: run this stage and those after it again; take the stages before it
        from their latest successful run.

    Raises
    ------
    SpecError, UsageError
        Invalid spec or arguments (nothing is written).
    ClusterError
        The cluster cannot be reached (nothing is written).
    """
    from shipyard.backends.profiles import resolve_cluster
    from shipyard.pipelines.tracker import PipelineTracker, pipeline_of_job
    from shipyard.spec.pipeline import PipelineSpec

    job_spec = _as_spec(spec, overrides)
    resolved_home, store = _open(home)
    if (no_cache or from_stage) and not isinstance(job_spec, PipelineSpec):
        option = "--no-cache" if no_cache else "--from"
        raise UsageError(f"{option} is for pipelines (kind: Pipeline); {job_spec.source} "
                         "is a single job")
    if sample is not None:
        if not 0 < sample <= 1:
            raise UsageError(f"--sample {sample:g}: give the share of each input to use, "
                             "above 0 and at most 1 (e.g. 0.01)")
        if not isinstance(job_spec, PipelineSpec):
            job_spec = pipeline_of_job(job_spec)
        cluster = "local"  # a trial run is local, whatever the spec says
    if isinstance(job_spec, PipelineSpec):
        profile = resolve_cluster(cluster or job_spec.spec.cluster, resolved_home.clusters)
        record = PipelineTracker(profile, resolved_home, store).submit_pipeline(
            job_spec, sample=sample, no_cache=no_cache, from_stage=from_stage)
        return Job(record.id, home=resolved_home)
    profile = resolve_cluster(cluster or job_spec.spec.cluster, resolved_home.clusters)
    record = get_backend(profile, resolved_home, store).submit(job_spec)
    return Job(record.id, home=resolved_home)


def resume(job_id: str, home: str | os.PathLike | Home | None = None) -> Job:
    """Run a FAILED or CANCELLED pipeline again from where it stopped: its succeeded
    stages are taken as they are, the others run. Returns the new run at once.

    Raises
    ------
    JobNotFoundError, UsageError
        No such run, a job rather than a pipeline, or a pipeline that did not fail.
    """
    resolved_home, store = _open(home)
    record = store.get(job_id)
    from shipyard.backends.profiles import resolve_cluster
    from shipyard.pipelines.tracker import PipelineTracker

    # resume refuses a job (not a pipeline) with a message that says what to do instead
    profile = (resolve_cluster(record.cluster, resolved_home.clusters)
               if record.kind == "pipeline" else backend_of(record, resolved_home, store).profile)
    tracker = PipelineTracker(profile, resolved_home, store)
    new = tracker.resume(tracker.refresh(record))
    return Job(new.id, home=resolved_home)


def run(spec: Any, cluster: str | None = None,
        overrides: Iterable[str] | Mapping[str, Any] = (), *,
        home: str | os.PathLike | Home | None = None, timeout: float | None = None,
        **options: Any) -> Job:
    """Submit a spec and wait for the job to end; return the :class:`Job`.

    ``options`` are :func:`submit`'s (``sample``, ``no_cache``, ``from_stage``). Check
    ``job.status().state`` (or call ``job.result()``, which raises if it failed).
    """
    job = submit(spec, cluster=cluster, overrides=overrides, home=home, **options)
    job.wait(timeout=timeout)
    return job


def render(spec: Any, cluster: str | None = None,
           overrides: Iterable[str] | Mapping[str, Any] = (), *,
           home: str | os.PathLike | Home | None = None) -> list[dict[str, Any]]:
    """The Kubernetes manifests a submission of ``spec`` to ``cluster`` would create (a
    pipeline: every stage's, in order, each reading the outputs before it where the
    cluster keeps them).

    Nothing is submitted and the cluster is not contacted; the job id is a fresh one, as
    ``submit`` would draw.

    Raises
    ------
    SpecError, UsageError
        An invalid spec, or a cluster profile that is not ``backend: kubernetes``.
    """
    from shipyard.backends.kubernetes.render import render as render_manifests
    from shipyard.backends.kubernetes.render import render_pipeline, submission_warnings
    from shipyard.backends.kubernetes.settings import kubernetes_settings
    from shipyard.backends.profiles import resolve_cluster
    from shipyard.core.ids import new_job_id
    from shipyard.spec.pipeline import PipelineSpec

    # rendering reads no data: the pods read it, with their own access
    job_spec = _as_spec(spec, overrides, check_inputs=False)
    resolved_home, store = _open(home)
    profile = resolve_cluster(cluster or job_spec.spec.cluster, resolved_home.clusters)
    if profile.backend != "kubernetes":
        raise UsageError(f"--cluster {profile.name}: render prints Kubernetes manifests, and "
                         f"this cluster's backend is {profile.backend}; name a profile with "
                         "backend: kubernetes (e.g. --cluster kubernetes, cluster/kubernetes.yaml)")
    settings = kubernetes_settings(profile.name, profile.settings)
    backend = get_backend(profile, resolved_home, store)
    # the package a submission would ship (built into the local cache; nothing uploaded)
    package = backend.code_package(job_spec)
    digest = package.digest if package else None
    if isinstance(job_spec, PipelineSpec):
        return render_pipeline(job_spec, settings, code_digest=digest)
    for warning in submission_warnings(job_spec, settings):
        logging.getLogger("shipyard.render").warning("warning: %s", warning)
    return render_manifests(job_spec, settings, new_job_id(job_spec.name), code_digest=digest)


def get_job(job_id: str, home: str | os.PathLike | Home | None = None) -> Job:
    """The :class:`Job` with this id.

    Raises
    ------
    JobNotFoundError
    """
    job = Job(job_id, home=home)
    job._store.get(job_id)
    return job


def _refresh_unfinished(home: Home, store: JobStore) -> None:
    """Reconcile every unfinished job with reality (a lost supervisor, a finished pod)."""
    trackers: dict[tuple, Tracker] = {}
    for record in store.list(states={JobState.PENDING, JobState.RUNNING}):
        # a pipeline and a job of the same cluster have different trackers
        key = (record.kind, record.backend, record.cluster, record.cluster_address)
        if key not in trackers:
            trackers[key] = _tracker_for(record, home, store)
        trackers[key].refresh(record)


def list_jobs(home: str | os.PathLike | Home | None = None,
              limit: int | None = None) -> list[JobRecord]:
    """Every job in the store (oldest first), unfinished ones reconciled with reality."""
    resolved_home, store = _open(home)
    _refresh_unfinished(resolved_home, store)
    return store.list(limit=limit)


def list_statuses(home: str | os.PathLike | Home | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """The ``status --json`` object of every job (as :func:`list_jobs`, but cheaper)."""
    resolved_home, store = _open(home)
    _refresh_unfinished(resolved_home, store)
    return store.statuses(limit=limit)

