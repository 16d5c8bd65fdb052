"""Submitting, watching and cancelling pipelines; ``shipyard resume``.

A pipeline is a row of the job store (``kind = 'pipeline'``) with its stages beside it
(:mod:`shipyard.pipelines.store`), and a driver process
(:mod:`shipyard.pipelines.driver`) that submits each stage as a job to the pipeline's
backend. :class:`PipelineTracker` gives pipelines the same handle as jobs (status,
wait, logs, cancel) as a :class:`~shipyard.core.tracker.Tracker`: a pipeline is carried
by its driver, not run by a backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from shipyard.core.atomic import write_text_atomic
from shipyard.core.errors import UsageError
from shipyard.core.ids import new_job_id
from shipyard.core.lifecycle import ask_supervisor_to_cancel
from shipyard.core.procs import is_alive, reap_in_background, start_time
from shipyard.core.states import JobState
from shipyard.core.store import JobRecord, JobStore
from shipyard.core.tracker import Tracker
from shipyard.pipelines import store as stage_store
from shipyard.pipelines.driver import stop_stages
from shipyard.spec.pipeline import PipelineSpec

if TYPE_CHECKING:
    from shipyard.backends.profiles import ClusterProfile
    from shipyard.core.home import Home

__all__ = ["PipelineTracker", "pipeline_of_job"]

#: A driver found dead is started again this many times, then the pipeline fails.
MAX_DRIVER_RESTARTS = 3
_DRIVER_LOST = "pipeline driver lost"
_START_GRACE = 30.0


def pipeline_of_job(job_spec) -> PipelineSpec:
    """A one-stage pipeline running ``job_spec`` (a trial run of a job is a pipeline's)."""
    from shipyard.spec.pipeline import load_pipeline

    document = job_spec.to_dict()
    body = document["spec"]
    stage = {"name": job_spec.workload_name,
             **{k: body[k] for k in ("resources", "retries", "timeout") if k in body},
             job_spec.workload_name: body[job_spec.workload_name]}
    pipeline = {"apiVersion": document["apiVersion"], "kind": "Pipeline",
                "metadata": document["metadata"],
                "spec": {"stages": [stage],
                         **{k: body[k] for k in ("cluster", "report") if k in body}}}
    return load_pipeline(pipeline, job_spec.source, job_spec.base_dir)


class PipelineTracker(Tracker):
    """Pipelines on any backend.

    Parameters
    ----------
    profile : ClusterProfile
        The cluster the pipeline's stages run on.
    home : Home
    store : JobStore
    """

    def __init__(self, profile: ClusterProfile, home: Home, store: JobStore):
        super().__init__(home, store)
        self.profile = profile

    def submit_pipeline(self, spec: PipelineSpec, *, sample: float | None = None,
                        no_cache: bool = False, from_stage: str | None = None,
                        reuse: dict[str, dict[str, str]] | None = None,
                        force: list[str] | None = None, sample_dir: str | None = None,
                        resumed_from: str | None = None) -> JobRecord:
        """Record the pipeline and its stages, and start its driver.

        Parameters
        ----------
        spec : PipelineSpec
        sample : float, optional
            A trial run on this share of each input (local, outputs under the run dir,
            nothing cached).
        no_cache : bool
            Run every stage, whatever the cache holds.
        from_stage : str, optional
            Run this stage and every stage after it; take the others from their latest
            successful run.
        reuse : dict, optional
            ``{stage: {"job_id", "pipeline_id"}}``: stage results to take as they are.
        force : list of str, optional
            Stages to run whatever the cache holds (``from_stage`` adds its own).
        sample_dir : str, optional
            Where a trial run's stages write (default ``runs/<id>/sample``); a resumed
            trial run keeps the one its reused stages wrote to.
        resumed_from : str, optional
            The run this one resumes (recorded).
        """
        from shipyard.backends import get_backend

        force: list[str] = list(force or [])
        reuse = dict(reuse or {})
        if from_stage is not None:
            if sample is not None:
                # the stages before it would come from real runs, at their real outputs,
                # which the sampled stages after it do not read
                raise UsageError(f"--from {from_stage} and --sample do not go together: a "
                                 "trial run runs every stage on a sample; leave out --from")
            if from_stage not in spec.stages:
                raise UsageError(f"--from {from_stage}: the pipeline has no such stage "
                                 f"(stages: {', '.join(spec.order)})")
            force = [s for s in spec.order
                     if s == from_stage or s in spec.downstream(from_stage)]
            for name in spec.order:
                if name not in force:
                    found = self._latest_real_run(spec.name, name)
                    if found is not None:
                        reuse[name] = {"job_id": found.job_id,
                                       "pipeline_id": found.pipeline_id}
        backend = get_backend(self.profile, self.home, self.store)
        if sample is None:  # a trial run runs here, on the local cluster
            for name in spec.order:
                backend.refuse_local_data(spec.stage_spec(name))
        backend.check_reachable()
        record = self.store.create(
            lambda: new_job_id(spec.name), name=spec.name, cluster=self.profile.name,
            backend=self.profile.backend, max_attempts=1, timeout_s=spec.spec.timeout,
            workdir=os.getcwd(), spec_dir=spec.base_dir, labels=dict(spec.metadata.labels),
            kind="pipeline")
        run_dir = self.home.run_dir(record.id)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir.spec, spec.to_yaml())
        run_dir.set_side("pipeline", {
            "cluster": self.profile.name, "sample": sample, "no_cache": no_cache,
            "force": force, "reuse": reuse, "resumed_from": resumed_from,
            "sample_dir": (sample_dir or str(run_dir / "sample")) if sample else None})
        stage_store.add_stages(self.store, record.id, [
            {"name": s.name, "workload": s.workload_name, "needs": s.needs}
            for s in spec.spec.stages])
        if resumed_from:
            self.store.note(record.id, f"resumes {resumed_from}")
        self._launch(record)
        return self.store.get(record.id)

    def _latest_real_run(self, pipeline: str, stage: str):
        """The newest succeeded run of ``stage`` that was not a trial run (whose outputs
        are samples, kept elsewhere)."""
        from shipyard.pipelines.driver import read_options

        for found in stage_store.last_succeeded(self.store, pipeline, stage):
            try:
                trial = read_options(self.home.run_dir(found.pipeline_id)).get("sample")
            except (OSError, ValueError):
                continue
            if not trial:
                return found
        return None

    def resume(self, record: JobRecord) -> JobRecord:
        """A new run of a failed or cancelled pipeline that takes its succeeded stages as
        they are and runs the others."""
        from shipyard.pipelines.driver import read_options
        from shipyard.spec import load

        if record.kind != "pipeline":
            raise UsageError(f"{record.id} is a job, not a pipeline; resume re-runs a "
                             f"pipeline's failed stages (run the job again with "
                             f"`shipyard run`)")
        if record.state not in (JobState.FAILED, JobState.CANCELLED):
            raise UsageError(f"pipeline {record.id} is {record.state}; only a FAILED or "
                             "CANCELLED pipeline can be resumed")
        run_dir = self.home.run_dir(record.id)
        spec = load(run_dir.spec, check_references=False, base_dir=record.spec_dir)
        options = read_options(run_dir)
        stages = stage_store.stages(self.store, record.id)
        reuse = {s.name: {"job_id": s.job_id, "pipeline_id": s.reused_from or record.id}
                 for s in stages if s.state == "SUCCEEDED" and s.job_id}
        # the run's options hold: stages a --from forced that did not finish still run,
        # whatever the cache holds, and a trial run's stages read where the reused wrote
        force = [name for name in options.get("force") or [] if name not in reuse]
        return self.submit_pipeline(spec, sample=options.get("sample"),
                                    no_cache=bool(options.get("no_cache")), reuse=reuse,
                                    force=force, sample_dir=options.get("sample_dir"),
                                    resumed_from=record.id)

    # -- hooks -------------------------------------------------------------------------

    def _launch(self, record: JobRecord) -> None:
        log_path = self.home.attempt_log(record.id, 1)
        env = dict(os.environ, SHIPYARD_HOME=str(self.home.root), PYTHONUNBUFFERED="1")
        paths = [p for p in (record.spec_dir, record.workdir, env.get("PYTHONPATH")) if p]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "shipyard.pipelines.driver", record.id],
                cwd=record.workdir or None, env=env, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                close_fds=True)
        reap_in_background(proc)
        self.store.update(record.id, supervisor_pid=proc.pid,
                          supervisor_started=start_time(proc.pid))

    def _refresh(self, record: JobRecord) -> JobRecord:
        if record.supervisor_pid is None:
            # being started (at submission, or again by another reader just now)
            if time.time() - (record.supervisor_started or record.created_at) < _START_GRACE:
                return record
        elif is_alive(record.supervisor_pid, record.supervisor_started):
            return record
        record = self.store.get(record.id)
        if record.state.is_terminal():
            return record
        # Killed (or the machine restarted): the driver keeps its state in the store,
        # so a new one carries on where it stopped.
        restarts = sum(1 for e in self.store.events(record.id)
                       if (e.message or "").startswith(_DRIVER_LOST))
        if restarts < MAX_DRIVER_RESTARTS:
            # of two readers that found the driver dead, only one starts another
            if not self.store.update(
                    record.id, supervisor_pid=None, supervisor_started=time.time(),
                    if_values={"supervisor_pid": record.supervisor_pid,
                               "supervisor_started": record.supervisor_started}):
                return self.store.get(record.id)
            self.store.note(record.id, f"{_DRIVER_LOST}; starting it again")
            self._launch(record)
            return self.store.get(record.id)
        stop_stages(self.home, self.store, record.id, _DRIVER_LOST)
        return self.lifecycle.lost(record, _DRIVER_LOST)

    def _cancel(self, record: JobRecord, timeout: float) -> None:
        # the driver cancels each running stage's job, which takes a few seconds each
        if ask_supervisor_to_cancel(self.store, record, max(timeout, 5.0) * 4):
            return
        stop_stages(self.home, self.store, record.id, "pipeline cancelled")
        self.store.transition(record.id, JobState.CANCELLED, "cancelled")
