"""The Ray driver's worker lines, each with the time it was printed.

Ray already brings its workers' output into the driver's process (the runner, whose
output is the attempt log), ``(RayTrainWorker pid=..., ip=...) line``, but without a
time, so those lines could not be placed among the runner's own and the Dask workers'
(:mod:`shipyard.runtime.worker_logs`). :func:`install_ray_log_timestamps` wraps
``ray._private.worker.print_worker_logs``, the function the driver's log thread prints
each batch of worker lines with (after Ray's deduplication), so that each line it prints
starts with the time, in the runner's ``%(asctime)s`` format (:func:`format_time`)::

    2026-11-25 10:00:00,456 (RayTrainWorker pid=4242, ip=10.0.0.7) epoch 1: loss 0.31

Where Ray's internals differ from what is expected, nothing is changed and Ray prints as
usual: a missing time must never fail a job.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import sys
import time
from typing import Any, TextIO

from shipyard.runtime.worker_logs import format_time

__all__ = ["install_ray_log_timestamps", "uninstall_ray_log_timestamps"]

# the Dask forwarding's logger: one name to raise or silence for all worker output
log = logging.getLogger("shipyard.worker_logs")

_ANSI_SGR = re.compile(r"\x1b\[[0-9;]*m")


class _TimestampedLines:
    """A file that writes each line it is given to ``target`` with the time in front
    (and without colour codes where ``target`` is not a terminal)."""

    def __init__(self, target: TextIO):
        self.target = target
        self._rest = ""
        try:
            self._plain = not target.isatty()
        except Exception:
            self._plain = True

    def write(self, data: str) -> int:
        lines = (self._rest + data).split("\n")
        self._rest = lines.pop()
        if lines:
            self._emit(lines)
        return len(data)

    def _emit(self, lines: list[str]) -> None:
        stamp = format_time(time.time())
        text = "".join(f"{stamp} {line}\n" for line in lines)
        self.target.write(_ANSI_SGR.sub("", text) if self._plain else text)

    def flush(self) -> None:
        self.close()
        self.target.flush()

    def close(self) -> None:
        if self._rest:
            rest, self._rest = self._rest, ""
            self._emit([rest])

    def isatty(self) -> bool:
        return not self._plain


def install_ray_log_timestamps() -> bool:
    """Make the Ray driver print each worker line with the time in front.

    Ray's driver prints the lines of its workers (``(RayTrainWorker pid=..., ip=...)
    ...``) from a thread through ``ray._private.worker.print_worker_logs(data,
    print_file, ...)``; that function is wrapped so that ``print_file`` is given each
    line with the time (:func:`format_time`) in front. Idempotent.

    Returns
    -------
    bool
        False where Ray's internals are not as expected; Ray then prints as it does
        without this.
    """
    try:
        from ray._private import worker as ray_worker

        original = ray_worker.print_worker_logs
        if getattr(original, "_shipyard_original", None) is not None:
            return True
        if list(inspect.signature(original).parameters)[:2] != ["data", "print_file"]:
            raise TypeError(f"unexpected signature {inspect.signature(original)}")
    except Exception as err:  # Ray changed: its own printing stays
        log.info("Ray worker lines are printed without a time (%s: %s)",
                 type(err).__name__, err)
        return False

    @functools.wraps(original)
    def print_worker_logs(data: Any, print_file: Any, *args: Any, **kwargs: Any) -> Any:
        stamped = _TimestampedLines(print_file)
        try:
            return original(data, stamped, *args, **kwargs)
        finally:
            stamped.close()

    print_worker_logs._shipyard_original = original  # type: ignore[attr-defined]
    ray_worker.print_worker_logs = print_worker_logs
    return True


def uninstall_ray_log_timestamps() -> None:
    """Undo :func:`install_ray_log_timestamps` (where it is still the installed one)."""
    module = sys.modules.get("ray._private.worker")
    current = getattr(module, "print_worker_logs", None)
    original = getattr(current, "_shipyard_original", None)
    if original is not None:
        module.print_worker_logs = original
