"""How many Dask tasks a job has finished, for its progress (``tasks: {done, total}``).

A scheduler plugin counts, per client, the tasks each graph submitted and those that
finished (reached memory or erred); a thread in the runner reads the counts of its own
client about once a second. Counting per client keeps jobs sharing one scheduler
(``shipyard cluster up``) apart. A scheduler that cannot load the plugin (an existing
cluster without shipyard installed) only means no task counts: the job goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import SchedulerPlugin

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["TaskCounter", "TaskPoller", "read_counts"]

log = logging.getLogger("shipyard.dask")

PLUGIN_NAME = "shipyard-task-counter"


class TaskCounter(SchedulerPlugin):
    """Counts submitted and finished tasks per client on the scheduler."""

    name = PLUGIN_NAME

    def __init__(self) -> None:
        self.pending: dict[str, set] = {}
        self.counts: dict[str, list[int]] = {}

    def update_graph(self, scheduler: Any, *, client: str, tasks: list, **kwargs: Any) -> None:
        pending = self.pending.setdefault(client, set())
        counts = self.counts.setdefault(client, [0, 0])
        for key in tasks:
            state = scheduler.tasks.get(key)
            if key in pending or (state is not None and state.state == "memory"):
                continue  # already counted, or computed before (persisted data)
            pending.add(key)
            counts[1] += 1

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish not in ("memory", "erred", "forgotten"):
            return
        for client, pending in self.pending.items():
            if key in pending:
                pending.discard(key)
                if finish == "forgotten":  # dropped before it ran (a cancelled graph)
                    self.counts[client][1] -= 1
                else:
                    self.counts[client][0] += 1

    def remove_client(self, scheduler: Any, client: str) -> None:
        self.pending.pop(client, None)
        self.counts.pop(client, None)


def ensure_counter(dask_scheduler: Any) -> None:
    """Add the counter to the scheduler unless a job before this one did (runs on the
    scheduler: registering again would replace it, losing other jobs' counts)."""
    if PLUGIN_NAME not in dask_scheduler.plugins:
        dask_scheduler.add_plugin(TaskCounter(), name=PLUGIN_NAME)


def read_counts(dask_scheduler: Any, client_id: str) -> tuple[int, int]:
    """``(finished, submitted)`` tasks of ``client_id`` (runs on the scheduler)."""
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    done, total = (plugin.counts.get(client_id, [0, 0]) if plugin is not None else (0, 0))
    return done, total


class TaskPoller:
    """Reads the job's task counts every ``interval`` seconds once :meth:`install` has
    put the counter on its client's scheduler (the context calls it when the job's
    Dask client starts, before the first graph is submitted).

    Parameters
    ----------
    report : callable
        Called with ``(done, total)`` when they change.
    interval : float
        Seconds between reads.
    """

    def __init__(self, report: Callable[[int, int], None], interval: float = 1.0):
        self.report = report
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dask-task-progress",
                                        daemon=True)
        self._client: Client | None = None

    def install(self, client: Client) -> None:
        """Count ``client``'s tasks from now on, and start polling."""
        try:
            client.run_on_scheduler(ensure_counter)
        except Exception as err:  # e.g. a scheduler without shipyard: no task counts
            log.warning("Dask task progress unavailable: %s: %s", type(err).__name__, err)
            return
        self._client = client
        self._thread.start()

    def stop(self) -> None:
        """Read the counts a last time and stop (before the client closes)."""
        self._stop.set()
        if self._client is not None:
            self._thread.join(5)
            self._poll()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._poll():
                return

    def _poll(self) -> bool:
        try:
            done, total = self._client.run_on_scheduler(read_counts,
                                                        client_id=self._client.id)
        except Exception as err:  # progress is informative: never fail the job for it
            if not self._stop.is_set():
                log.warning("Dask task progress unavailable: %s: %s", type(err).__name__, err)
            return False
        self.report(done, total)
        return True
