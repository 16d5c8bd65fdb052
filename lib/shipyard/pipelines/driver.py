"""The driver of one pipeline run: ``python -m shipyard.pipelines.driver PIPELINE_ID``.

``shipyard run`` / ``submit`` of a pipeline starts one, detached, whatever the backend.
It submits each stage as a job of its own, through the pipeline's backend, as soon as
every stage it needs has succeeded, so stages that do not depend on each other run at
the same time. A local pipeline's Dask stages share one LocalCluster the driver starts
(unless ``shipyard cluster up`` runs one); on Kubernetes each stage is its own resource.

Before submitting a stage, the driver computes its cache key
(:mod:`shipyard.pipelines.cache`) and reuses a cached result instead when there is one.
Stages' log lines are copied into the pipeline's log with a ``[stage]`` prefix.

When a stage fails, no further stage starts (those running finish); the stages left
are SKIPPED and the pipeline fails with the stage's reason and failure kind, so a
stage's bad input makes ``shipyard run`` exit 2. Cancelling the pipeline cancels its
running stages. ``result.json`` and the report are written when the run ends.

The driver keeps all its state in the job store, so a driver that was killed is simply
started again (by the next ``status``) and carries on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from shipyard.backends.profiles import backend_of
from shipyard.core.home import Home, RunDir
from shipyard.core.states import FailureKind, JobState
from shipyard.core.store import JobStore
from shipyard.core.workloads import workload as workload_kind
from shipyard.runtime.process_main import job_process_main
from shipyard.pipelines import store as stage_store
from shipyard.pipelines.cache import StageCache, stage_key
from shipyard.pipelines.store import SKIPPED, STAGE_TERMINAL, StageRecord

__all__ = ["PipelineDriver", "main", "split_stage_line"]

log = logging.getLogger("shipyard.pipeline")


#: Workloads that compute on Dask (they share the pipeline's cluster).



#: A line of the pipeline's log from a stage (``[prep] ...``) or the driver (``[pipeline]
#: ...``); the driver's own logging has no prefix.
_PREFIXED = re.compile(r"\[[a-z0-9-]+\](?: |$)")


def _prefixed(source: str, line: str) -> str:
    return f"[{source}] {line}"


def split_stage_line(line: str) -> tuple[str, str]:
    """Split a line of a pipeline's log into its source's prefix and the line as that
    source wrote it (``prefix + text == line``; no prefix: ``""``).

    Examples
    --------
    >>> split_stage_line("[prep]   File 'x.py', line 3")
    ('[prep] ', "  File 'x.py', line 3")
    >>> split_stage_line("2026-11-25 12:00:00 INFO shipyard.pipeline: started")
    ('', '2026-11-25 12:00:00 INFO shipyard.pipeline: started')
    """
    match = _PREFIXED.match(line)
    return (match.group(), line[match.end():]) if match else ("", line)


def read_options(run_dir: Path) -> dict[str, Any]:
    """The run's options (``run.json``'s ``pipeline`` section, written at submission)."""
    options = RunDir(run_dir).side("pipeline")
    if options is None:
        raise ValueError(f"{run_dir} holds no pipeline options (run.json)")
    return options


def sample_dir_of(run_dir: Path, options: dict[str, Any]) -> Path | None:
    """Where a trial run's stages write; None for a real run."""
    if not options.get("sample"):
        return None
    return Path(options.get("sample_dir") or Path(run_dir) / "sample")


class PipelineDriver:
    """Runs one pipeline's stages until the pipeline ends.

    Parameters
    ----------
    home : Home
    pipeline_id : str
    poll : float
        Seconds between looks at the stages' jobs.
    """

    def __init__(self, home: Home, pipeline_id: str, poll: float = 0.2):
        from shipyard.spec import load

        self.home = home
        self.store = JobStore(home.db)
        self.id = pipeline_id
        self.run_dir = home.run_dir(pipeline_id)
        self.poll = poll
        self.options = read_options(self.run_dir)
        self.spec = load(self.run_dir.spec, check_references=False,
                         base_dir=self.store.get(pipeline_id).spec_dir)
        self.cache = StageCache(home.root / "cache" / "stages")
        self.sample = self.options.get("sample")
        self.sample_dir = sample_dir_of(self.run_dir, self.options)
        self.outputs = self.spec.outputs(self.sample_dir)
        self.cancel_signalled = threading.Event()
        self._cluster = None            # the shared DaskSession, started on first need
        self._cluster_address: str | None = None
        self._backend = None
        self._followers: dict[str, threading.Thread] = {}
        self._print_lock = threading.Lock()
        self._last_progress: dict[str, Any] | None = None

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> JobState:
        """Run the stages until every one has ended; return the pipeline's state."""
        record = self.store.get(self.id)
        if record.state is JobState.PENDING:
            self.store.transition(self.id, JobState.RUNNING, "started")
        else:
            self._resubmit_orphans()
        deadline = (record.created_at + record.timeout_s) if record.timeout_s else None
        try:
            while True:
                record = self.store.get(self.id)
                if record.state.is_terminal():
                    return record.state
                if self.cancel_signalled.is_set() or record.cancel_requested:
                    self._stop_all("pipeline cancelled")
                    self._finish(JobState.CANCELLED, "cancelled", None)
                    continue
                if deadline is not None and time.time() >= deadline:
                    self._stop_all("pipeline timed out")
                    self._finish(JobState.FAILED, "timeout", FailureKind.TIMEOUT)
                    continue
                stages = self._step()
                if all(s.state in STAGE_TERMINAL for s in stages):
                    failed = next((s for s in stages if s.state in ("FAILED", "CANCELLED")),
                                  None)
                    if failed is None:
                        self._finish(JobState.SUCCEEDED, "completed", None)
                    else:
                        self._finish(JobState.FAILED,
                                     f"stage {failed.name!r} {failed.state.lower()}: "
                                     f"{failed.reason}",
                                     FailureKind(failed.failure_kind or "error"))
                    continue
                self.cancel_signalled.wait(self.poll)
        except Exception:
            # nothing else moves the stages on: stop them before the pipeline fails
            try:
                self._stop_all("pipeline driver error")
            except Exception:  # the error that brought us here is the one to report
                log.exception("could not stop the stages")
            raise
        finally:
            for thread in list(self._followers.values()):
                thread.join(timeout=5)
            if self._cluster is not None:
                self._cluster.close()

    def _resubmit_orphans(self) -> None:
        """Started again after a driver was lost: the stages that computed on its Dask
        cluster lost it with it (its scheduler lived in that process); they are
        cancelled and run again, on this driver's cluster."""
        try:
            lost = self.run_dir.side("pipeline_cluster")["address"]
        except (TypeError, KeyError):
            return  # the lost driver had started no cluster
        for stage in stage_store.stages(self.store, self.id):
            if stage.state != "RUNNING" or not stage.job_id:
                continue
            job = self.store.get(stage.job_id)
            if job.cluster_address != lost or job.state is JobState.SUCCEEDED:
                continue  # on another cluster, or done before the driver went
            _cancel_job(self.home, self.store, stage.job_id)
            self._update(stage.name, state="PENDING", job_id=None, started_at=None,
                         note=f"stage {stage.name}: its Dask cluster was lost with the "
                              f"pipeline driver; running it again")

    def _step(self) -> list[StageRecord]:
        """One look at every stage: settle those whose job ended, start those ready."""
        stages = stage_store.stages(self.store, self.id)
        for stage in stages:
            if stage.state == "RUNNING":
                self._settle(stage)
        stages = stage_store.stages(self.store, self.id)
        by_name = {s.name: s for s in stages}
        broken = [s for s in stages if s.state in ("FAILED", "CANCELLED")]
        for stage in stages:
            if stage.state != "PENDING":
                continue
            if broken:
                # nothing new starts once a stage failed; the ones running finish
                self._update(stage.name, state=SKIPPED, finished_at=time.time(),
                             reason=f"not run: stage {broken[0].name!r} "
                                    f"{broken[0].state.lower()}")
            elif all(by_name[n].state == "SUCCEEDED" for n in stage.needs):
                self._start(stage)
        stages = stage_store.stages(self.store, self.id)
        self._report_progress(stages)
        return stages

    def _report_progress(self, stages: list[StageRecord]) -> None:
        running = [s.name for s in stages if s.state == "RUNNING"]
        progress = {"phase": "stages", "unit": "stages", "total": len(stages),
                    "done": sum(s.state in STAGE_TERMINAL for s in stages),
                    "message": f"running: {', '.join(running)}" if running else None,
                    "stages": {s.name: s.state for s in stages}}
        if progress != self._last_progress:
            self._last_progress = progress
            self.store.set_progress(self.id, {**progress, "updated_at": time.time()})

    # -- starting a stage ------------------------------------------------------------------

    def _update(self, name: str, note: str | None = None, **fields: Any) -> None:
        stage_store.update_stage(self.store, self.id, name, note=note, **fields)
        if note:
            self._say(note)

    def _say(self, line: str) -> None:
        with self._print_lock:
            print(_prefixed("pipeline", line), flush=True)

    def _start(self, stage: StageRecord) -> None:
        name = stage.name
        now = time.time()
        reuse = (self.options.get("reuse") or {}).get(name)
        if reuse and self.home.run_dir(reuse["job_id"]).result.is_file():
            self._update(name, state="SUCCEEDED", cached=True, job_id=reuse["job_id"],
                         reused_from=reuse["pipeline_id"], started_at=now, finished_at=now,
                         note=f"stage {name}: reused from run {reuse['pipeline_id']}")
            return
        try:
            job_spec = self.spec.stage_spec(name, sample=self.sample,
                                            sample_dir=self.sample_dir,
                                            outputs=self._outputs_where_kept())
            key = None if self.sample else stage_key(job_spec, self.outputs[name])
        except Exception as err:  # validated at submission; the world may have changed
            from shipyard.runtime.runner import one_line

            self._update(name, state="FAILED", reason=one_line(err), started_at=now,
                         finished_at=now, failure_kind=FailureKind.INPUT.value,
                         note=f"stage {name}: could not be prepared: {one_line(err)}")
            return
        use_cache = key is not None and not self.options.get("no_cache") and \
            name not in (self.options.get("force") or [])
        entry = self.cache.get(key, self.home.run_dir) if use_cache else None
        if entry is not None:
            self._update(name, state="SUCCEEDED", cached=True, job_id=entry["job_id"],
                         cache_key=key, started_at=now, finished_at=now,
                         note=f"stage {name}: cached (result of {entry['job_id']})")
            return
        try:
            record = self._stage_backend().submit(
                job_spec, cluster_address=self._address_for(job_spec.workload_name))
        except Exception as err:
            from shipyard.runtime.runner import one_line

            # what exit code submitting it would have given (a bad --set is bad input)
            kind = FailureKind.of_exit(getattr(err, "exit_code", 1))
            self._update(name, state="FAILED", reason=one_line(err), started_at=now,
                         finished_at=time.time(), failure_kind=kind.value,
                         note=f"stage {name}: could not be submitted: {one_line(err)}")
            return
        self._update(name, state="RUNNING", job_id=record.id, cache_key=key, started_at=now,
                     note=f"stage {name}: submitted as job {record.id}")
        self._follow(name, record.id)

    def _outputs_where_kept(self) -> dict[str, str | None]:
        """Each stage's output where a later stage reads it: where its job's cluster keeps
        it (a Kubernetes cluster keeps local paths in its object store), as declared for
        stages that have not run."""
        backend = self._stage_backend()
        jobs = {s.name: s.job_id for s in stage_store.stages(self.store, self.id)}
        return {name: declared if declared is None or not jobs.get(name)
                else backend.kept_output(jobs[name], declared)
                for name, declared in self.outputs.items()}

    def _stage_backend(self):
        if self._backend is None:
            from shipyard.backends import get_backend
            from shipyard.backends.profiles import resolve_cluster

            profile = resolve_cluster(self.options.get("cluster"), self.home.clusters)
            self._backend = get_backend(profile, self.home, self.store)
        return self._backend

    def _address_for(self, workload: str) -> str | None:
        """The shared Dask cluster of a local run: started for the first Dask stage and
        offered to the python stages after it (a backend with a cluster of its own, or
        ``cluster up``, gets None here and uses its own)."""
        backend = self._stage_backend()
        if backend.name != "local" or backend.scheduler_address():
            return None
        wants = workload_kind(workload).engine == "dask" or (
            workload == "python" and any(workload_kind(s.workload_name).engine == "dask"
                                         for s in self.spec.spec.stages))
        if self._cluster is None and wants:
            from shipyard.runtime.dask_session import DaskSession

            self._cluster = DaskSession(self.spec.resources(),
                                        scratch_dir=str(self.run_dir / "dask-scratch"),
                                        forward_output=False)
            self._cluster_address = self._cluster.scheduler_address
            self.run_dir.set_side("pipeline_cluster", {"address": self._cluster_address})
            self._say(f"stages compute on the pipeline's Dask cluster "
                      f"{self._cluster_address} (dashboard {self._cluster.dashboard_link})")
        return self._cluster_address if wants else None

    def _follow(self, name: str, job_id: str) -> None:
        """Copy the stage job's log lines into the pipeline's log, prefixed."""
        def copy() -> None:
            try:
                for line in backend_of(self.store.get(job_id), self.home,
                                       self.store).logs(job_id, follow=True):
                    with self._print_lock:
                        print(_prefixed(name, line), flush=True)
            except Exception as err:  # the stage's own log stays complete
                self._say(f"stage {name}: stopped copying its log: {err}")

        thread = threading.Thread(target=copy, name=f"log-{name}", daemon=True)
        self._followers[name] = thread
        thread.start()

    # -- a stage's job ended ---------------------------------------------------------------

    def _settle(self, stage: StageRecord) -> None:
        record = self.store.get(stage.job_id)
        backend = backend_of(record, self.home, self.store)
        if not record.state.is_terminal():
            record = backend.refresh(record)
        if not record.state.is_terminal():
            return
        follower = self._followers.pop(stage.name, None)
        if follower is not None:
            follower.join(timeout=5)
        if record.state is JobState.SUCCEEDED:
            try:
                outputs = list(_result(backend, record).get("outputs") or [])
            except Exception as err:
                self._update(stage.name, state="FAILED", finished_at=time.time(),
                             reason=f"its result could not be read: {err}",
                             failure_kind=FailureKind.CLUSTER.value,
                             note=f"stage {stage.name}: result unreadable: {err}")
                return
            if stage.cache_key:
                declared = self.outputs.get(stage.name)
                self.cache.put(stage.cache_key, job_id=record.id, pipeline=self.spec.name,
                               stage=stage.name,
                               outputs=outputs + ([declared] if declared else []))
            self._update(stage.name, state="SUCCEEDED", finished_at=time.time(),
                         note=f"stage {stage.name}: succeeded in "
                              f"{time.time() - stage.started_at:.1f} s")
        else:
            self._update(stage.name, state=record.state.value, reason=record.reason,
                         failure_kind=record.failure_kind, finished_at=time.time(),
                         note=f"stage {stage.name}: {record.state.value.lower()}: "
                              f"{record.reason}")

    def _stop_all(self, why: str) -> None:
        for line in stop_stages(self.home, self.store, self.id, why):
            self._say(line)

    def _finish(self, state: JobState, reason: str, kind: FailureKind | None) -> None:
        from shipyard.pipelines.results import write_pipeline_results

        try:
            write_pipeline_results(self.home, self.id, self.spec, state.value, reason,
                                   self.sample_dir)
        except Exception as err:  # the state stands without the page
            self._say(f"could not write the result and report: {err}")
        self._say(f"{state.value.lower()}: {reason}")
        self.store.transition(self.id, state, reason, failure_kind=kind)


def _cancel_job(home: Home, store: JobStore, job_id: str) -> None:
    """Cancel a stage's job through the backend it runs on (a stage is a plain job)."""
    record = store.get(job_id)
    backend_of(record, home, store).cancel(record, timeout=5.0)


def _result(backend, record) -> dict[str, Any]:
    """A succeeded stage job's ``result.json`` (copied from its cluster if need be)."""
    path = backend.home.run_dir(record.id).result
    if not path.is_file():
        backend.fetch_results(record)
    return json.loads(path.read_text())


def stop_stages(home: Home, store: JobStore, pipeline_id: str, why: str) -> list[str]:
    """Cancel a pipeline's running stages' jobs and skip the ones not started; return
    what was done, a line per stage."""
    done = []
    for stage in stage_store.stages(store, pipeline_id):
        if stage.state == "RUNNING":
            _cancel_job(home, store, stage.job_id)
            stage_store.update_stage(store, pipeline_id, stage.name, state="CANCELLED",
                                     reason=why, finished_at=time.time(),
                                     note=f"stage {stage.name}: cancelled ({why})")
            done.append(f"stage {stage.name}: cancelled ({why})")
        elif stage.state == "PENDING":
            stage_store.update_stage(store, pipeline_id, stage.name, state=SKIPPED,
                                     reason=f"not run: {why}", finished_at=time.time())
    return done


def _start(home: Home, pipeline_id: str):
    # the shared cluster's scheduler and workers would narrate every task at INFO here
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    driver = PipelineDriver(home, pipeline_id)
    signal.signal(signal.SIGTERM, lambda *_: driver.cancel_signalled.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return driver.run


def main(argv: list[str] | None = None) -> int:
    return job_process_main("shipyard.pipelines.driver", "pipeline driver", _start, log, argv)


if __name__ == "__main__":
    sys.exit(main())
