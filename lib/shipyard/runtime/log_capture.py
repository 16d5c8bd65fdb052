"""Keep a copy of everything a process (and its children) print, in a file.

A runner in a Kubernetes pod prints to the pod's log, which goes when Kubernetes deletes
the pod. :func:`tee_output` copies the process's stdout and stderr, at the file
descriptor level (so Dask's and Ray's child processes are included), into the attempt's
log file while still printing them, and the runner keeps that file with its results.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["tee_output"]


@contextlib.contextmanager
def tee_output(path: str | os.PathLike, wait: float = 5.0) -> Iterator[None]:
    """Within the block, whatever is written to file descriptors 1 and 2 (by this process
    or the processes it starts) also goes to ``path`` (appended); both end up on stdout.

    Parameters
    ----------
    path : path
        The copy.
    wait : float
        On leaving, how long to wait for output still in flight (a child that outlives
        the block keeps the pipe open; what it prints after that is not copied).
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    saved_out, saved_err = os.dup(1), os.dup(2)
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    copy = open(path, "ab")
    lock = threading.Lock()

    def pump() -> None:
        while chunk := os.read(read_end, 65536):
            os.write(saved_out, chunk)
            with lock:
                if not copy.closed:
                    copy.write(chunk)
                    copy.flush()

    thread = threading.Thread(target=pump, name="tee-output", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)  # our ends of the pipe closed: the pump sees EOF
        os.dup2(saved_err, 2)
        os.close(saved_err)
        thread.join(wait)
        with lock:
            copy.close()
        if not thread.is_alive():
            os.close(read_end)
            os.close(saved_out)
