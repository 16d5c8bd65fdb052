"""One attempt of a job: ``python -m shipyard.runtime.runner``.

Every backend starts this same entrypoint with the same spec, so a job runs the same
code on a laptop and on a cluster. The runner

1. loads ``<run dir>/spec.yaml`` (validating it again: this is where it enters this process),
2. gives the workload a :class:`~shipyard.runtime.context.JobContext` with a lazily started Dask client,
3. writes ``result.json`` (atomically) when the workload returns,
4. writes ``logs/attempt-<n>.outcome.json`` saying how the attempt ended, with the
   exception's one-line summary as the reason; the traceback goes to the attempt log.

Exit status: 0 success, 1 the workload failed, 2 bad input (no use retrying),
3 the cluster could not be reached, 143 terminated by a signal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from shipyard.core.atomic import write_json_atomic
from shipyard.core.errors import ShipyardError, SpecError
from shipyard.core.home import RunDir, attempt_log_path, attempt_outcome_path
from shipyard.core.runner_cli import runner_parser
from shipyard.core.states import FailureKind
from shipyard.core.workloads import resolve, workload
from shipyard.report.page import REPORT_PATH

__all__ = ["main", "one_line"]

log = logging.getLogger("shipyard.runner")

#: Seconds between progress uploads to the object store (Kubernetes jobs).
STORAGE_PROGRESS_INTERVAL = 5.0



class Terminated(BaseException):
    """Raised in the runner's main thread on SIGTERM (a BaseException, so that a
    workload's ``except Exception`` cannot swallow it)."""


def one_line(err: BaseException, limit: int = 500) -> str:
    """The exception's one-line summary: ``Type: first line of the message``.

    Examples
    --------
    >>> one_line(ValueError("bad value\\nmore detail"))
    'ValueError: bad value'
    """
    if isinstance(err, SpecError):
        text = "; ".join([err.args[0].split(":\n")[0], *err.problems])
    elif isinstance(err, ShipyardError):
        text = " ".join(err.message.split())
    else:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        text = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # Dask's scheduler and nannies narrate every connection at INFO. Importing
    # distributed applies Dask's logging config, so the level is set there (workers
    # inherit it through the environment); a user's own setting wins.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


def _watch_parent(parent: int) -> None:
    """End this attempt's whole process group if the supervisor disappears, so a
    killed supervisor leaves no orphaned attempt behind."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        log.error("supervisor %d is gone; ending this attempt", parent)
        os.killpg(os.getpgrp(), signal.SIGTERM)
        time.sleep(3)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="watch-supervisor", daemon=True).start()


def _progress_writer(db: str | None, job_id: str, storage=None):
    """Where progress goes besides ``progress.json``: the job store (local backend), the
    object store (Kubernetes: the submitter's `status` reads it there)."""
    store = None
    if db:
        from shipyard.core.store import JobStore

        store = JobStore(Path(db))
    if store is None and storage is None:
        return None
    last_upload = [0.0]

    def write(progress: dict[str, Any]) -> None:
        try:
            if store is not None:
                store.set_progress(job_id, progress)
            # an object-store write per second would cost more than it tells; the final
            # progress goes with the results
            if storage is not None and time.monotonic() - last_upload[0] >= STORAGE_PROGRESS_INTERVAL:
                last_upload[0] = time.monotonic()
                storage.put_progress(progress)
        except Exception as err:  # progress is informative; never fail the job over it
            log.warning("could not record progress: %s", err)

    return write


def _spec_from_env(run_dir: Path, variable: str) -> None:
    """Write the spec a backend sent along (base64 YAML in ``variable``) to the run
    directory, where a cluster that does not share our filesystem has none."""
    import base64

    path = RunDir(run_dir).spec
    if not path.is_file() and os.environ.get(variable):
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(os.environ[variable]))


def _sync(storage, run_dir: Path, outcome: dict[str, Any]) -> None:
    """Copy the attempt's results to the object store (outputs written to local paths
    too: the pod's disk goes away with it), noting in result.json where they went."""
    import json

    try:
        result_path = RunDir(run_dir).result
        if outcome["status"] == "succeeded" and result_path.is_file():
            result = json.loads(result_path.read_text())
            stored = storage.upload_outputs(result.get("outputs") or [])
            if stored:
                write_json_atomic(result_path, {**result, "stored_outputs": stored})
        storage.upload(run_dir)
        log.info("results copied to %s", storage.url)
    except Exception as err:
        reason = f"could not copy the results to {storage.url}: {one_line(err)}"
        log.error("%s", reason)
        if outcome.get("kind") != FailureKind.INPUT.value:
            # bad input stays bad input (exit 2, not retried) whatever the upload did
            outcome.update(status="failed", kind=FailureKind.CLUSTER.value, reason=reason)


def run_attempt(run_dir: Path, job_id: str, attempt: int, dask_address: str | None,
                db: str | None, ray_address: str | None = None,
                storage=None, dask_connect_timeout: float | None = None,
                code: str | None = None) -> dict[str, Any]:
    """Run the workload once and return the outcome (also written to the outcome file).

    ``code``: the job's code package (a zip, or its URL in ``storage``), importable
    before the spec is loaded and sent to a Dask cluster the attempt connects to.
    """
    from shipyard.runtime.dask_session import DaskSession
    from shipyard.runtime.ray_session import RaySession
    from shipyard.runtime.task_progress import TaskPoller
    from shipyard.runtime.context import JobContext
    from shipyard.spec import load
    from shipyard.spec.job import check_data

    started = time.time()
    ctx = None
    dask = ray = None
    tasks = TaskPoller(lambda done, total: ctx.task_counts(done, total))
    try:
        package = None
        if code is not None:
            from shipyard.runtime.code import install_code

            package = install_code(code, run_dir, fs=storage.fs if storage else None)
        # the data is checked once, here where the job runs (it may have changed since
        # submission), not by loading and again by the workload
        spec = load(RunDir(run_dir).spec, check_inputs=False)
        check_data(spec, f"the {spec.workload_name} job does not fit its inputs")
        dask = DaskSession(spec.spec.resources, address=dask_address,
                           scratch_dir=str(run_dir / "dask-scratch"), code=package,
                           **({"connect_timeout": dask_connect_timeout}
                              if dask_connect_timeout else {}))
        ray = RaySession(spec.spec.resources, address=ray_address)
        ctx = JobContext(job_id=job_id, attempt=attempt, run_dir=run_dir, spec=spec,
                         dask=dask, ray=ray,
                         on_progress=_progress_writer(db, job_id, storage),
                         on_dask_start=tasks.install)
        log.info("job %s attempt %d: %s workload", job_id, attempt, spec.workload_name)
        result = resolve(workload(spec.workload_name).run)(spec.workload, ctx)
        tasks.stop()
        write_json_atomic(RunDir(run_dir).result, {
            "outputs": ctx.outputs, **result, "job_id": job_id, "attempt": attempt,
            "workload": spec.workload_name, "figures": ctx.figures.entries,
            "phases": ctx.phase_timings(), "report": REPORT_PATH.as_posix()})
        outcome = {"status": "succeeded"}
    except Terminated:
        log.warning("attempt %d terminated by a signal", attempt)
        outcome = {"status": "terminated", "reason": "terminated by a signal"}
    except BaseException as err:
        kind = FailureKind.of(err)
        if kind is FailureKind.ERROR:
            log.error("attempt %d failed:\n%s", attempt, traceback.format_exc())
        else:
            log.error("attempt %d failed: %s", attempt, err)
        outcome = {"status": "failed", "kind": kind.value, "reason": one_line(err)}
    finally:
        tasks.stop()
        if ctx is not None:
            ctx.flush_progress()
        if dask is not None:
            dask.close()
        if ray is not None:
            ray.close()
        shutil.rmtree(run_dir / "dask-scratch", ignore_errors=True)
    outcome.update(attempt=attempt, started_at=started, finished_at=time.time())
    if ctx is not None:
        outcome["phases"] = ctx.phase_timings()
    return outcome


def _write_report(run_dir: Path, job_id: str, outcome: dict[str, Any]) -> None:
    """The attempt's report page (a failed attempt's too: it shows the log's tail)."""
    from shipyard.runtime.reporting import write_job_report

    sys.stdout.flush()
    sys.stderr.flush()
    try:
        path = write_job_report(
            run_dir, job_id=job_id,
            state="SUCCEEDED" if outcome["status"] == "succeeded" else "FAILED",
            attempt=outcome["attempt"], reason=outcome.get("reason"),
            started_at=outcome.get("started_at"), finished_at=outcome.get("finished_at"),
            log_path=attempt_log_path(run_dir, outcome["attempt"]))
        log.info("report: %s", path)
    except Exception as err:  # the report is for people; the job's outcome stands
        log.warning("could not write the report: %s", one_line(err))


def main(argv: list[str] | None = None) -> int:
    parser = runner_parser()
    args = parser.parse_args(argv)

    _configure_logging()
    if args.watch_parent:
        _watch_parent(args.watch_parent)

    def on_sigterm(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
        raise Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)
    if args.workdir:
        os.chdir(args.workdir)
    if args.spec_from_env:
        _spec_from_env(args.run_dir, args.spec_from_env)
    if args.spec_file:
        (args.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.spec_file, RunDir(args.run_dir).spec)
    storage = None
    if args.sync:
        from shipyard.core.run_storage import RunStorage

        storage = RunStorage.from_file(args.sync)
    if args.attempt == "auto":
        if storage is None:
            parser.error("--attempt auto needs --sync (the attempts are counted there)")
        attempt = storage.claim_attempt()
    else:
        attempt = int(args.attempt)
    capture = contextlib.nullcontext()
    if storage is not None:
        # the pod's log goes with the pod: keep a copy with the results
        from shipyard.runtime.log_capture import tee_output

        capture = tee_output(attempt_log_path(args.run_dir, attempt))
    with capture:
        outcome = run_attempt(args.run_dir, args.job_id, attempt, args.dask_address,
                              args.store, args.ray_address, storage,
                              args.dask_connect_timeout,
                              args.code or (storage.code if storage is not None else None))
    write_json_atomic(attempt_outcome_path(args.run_dir, attempt), outcome)
    _write_report(args.run_dir, args.job_id, outcome)
    if storage is not None:
        _sync(storage, args.run_dir, outcome)
    if outcome["status"] == "succeeded":
        return 0
    if outcome["status"] == "terminated":
        return 143
    return FailureKind(outcome["kind"]).exit_code


if __name__ == "__main__":
    sys.exit(main())
