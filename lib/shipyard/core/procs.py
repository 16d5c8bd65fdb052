"""Process helpers for the local job layer: is a recorded process still ours, and
how to end a process tree without leaving orphans.

A pid alone is not an identity: after a process dies its pid can be reused. Every pid
the store records comes with the process's start time, and a pid whose start time
differs (or that is a zombie) counts as gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import psutil

__all__ = ["start_time", "is_alive", "tree", "terminate_tree", "reap_in_background"]


def start_time(pid: int) -> float | None:
    """The start time of process ``pid`` (epoch seconds), or None if there is none."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    """Whether process ``pid`` exists, is not a zombie, and started at ``started``."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 0.5
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants that exist now (the process first)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _group_members(pgid: int) -> list[psutil.Process]:
    # Also the members of the session ``pgid`` leads (attempts start in a session of
    # their own): Ray puts each of its worker processes in a process group of its own.
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and pgid in (
                    os.getpgid(proc.pid), os.getsid(proc.pid)):
                members.append(proc)
        except (OSError, psutil.NoSuchProcess):  # gone, or not ours to look at
            continue
    return members


def _signal_all(procs: list[psutil.Process], pgid: int | None, sig: int) -> None:
    if pgid:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def terminate_tree(pid: int | None, pgid: int | None, grace: float = 3.0) -> list[int]:
    """End a process tree: SIGTERM, then SIGKILL whatever is left after ``grace`` seconds.

    Both the process group ``pgid`` (children whose parent already died stay in it)
    and every descendant of ``pid`` (children that left the group, e.g. with
    ``setsid``) are signalled.

    Returns
    -------
    list of int
        The pids that had to be killed with SIGKILL.
    """
    procs = tree(pid) if pid else []
    if pgid:
        known = {p.pid for p in procs}
        procs += [p for p in _group_members(pgid) if p.pid not in known]
    if not procs:
        return []
    _signal_all(procs, pgid, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    # and whatever joined the session during the grace period (a Ray worker starting)
    if pgid:
        known = {p.pid for p in alive}
        alive += [p for p in _group_members(pgid) if p.pid not in known]
    if alive:
        _signal_all(alive, pgid, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=2.0)
    return [p.pid for p in alive]


def reap_in_background(proc: subprocess.Popen) -> None:
    """Wait for a detached child (a supervisor, a pipeline driver) in a daemon thread.

    The child outlives us if we exit first; if we live longer (a notebook, a test run),
    waiting for it keeps it from lingering as a zombie.
    """
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
