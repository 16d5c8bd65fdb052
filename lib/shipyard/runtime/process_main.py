"""The ``main`` of a detached process that carries one job to its end.

A job's supervisor (``python -m shipyard.runtime.supervisor JOB_ID``) and a pipeline's
driver (``python -m shipyard.pipelines.driver PIPELINE_ID``) are such processes: nothing
else moves their job on, so an error of their own must still end the job, as FAILED
with the error as its reason, rather than leave it RUNNING until someone notices.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from shipyard.core.home import Home
from shipyard.core.states import FailureKind, JobState
from shipyard.core.store import JobStore

__all__ = ["job_process_main"]


def job_process_main(module: str, what: str, start: Callable[[Home, str], Callable[[], JobState]],
                     log: logging.Logger, argv: list[str] | None = None) -> int:
    """Run ``python -m MODULE JOB_ID``: ``start(home, job_id)`` builds the process's
    object and returns the call that runs the job to its end.

    Parameters
    ----------
    module : str
        The module run with ``-m`` (for the usage line).
    what : str
        What the process is, for its log and the job's reason (``"supervisor"``).
    start : callable
        ``start(home, job_id) -> run``; ``run()`` returns the job's final state.
    log : logging.Logger
        The process's logger.
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 when the job was carried to its end, 1 when this process
        failed (the job is FAILED then), 2 for a wrong command line.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m {module} JOB_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    home, job_id = Home.from_env(), args[0]
    try:
        state = start(home, job_id)()
    except Exception as err:
        log.exception("%s failed", what)
        JobStore(home.db).transition(job_id, JobState.FAILED,
                                     f"{what} error: {type(err).__name__}: {err}",
                                     failure_kind=FailureKind.ERROR)
        return 1
    log.info("%s %s ended %s", what, job_id, state)
    return 0
