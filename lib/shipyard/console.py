"""How jobs are shown in a terminal: status pages, the job table, and ``run``'s live view.

On a terminal ``run`` shows a live line (rich) under the streaming log; elsewhere (CI
logs, pipes) it prints plain lines: the log on stdout, state changes on stderr.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TextIO

from shipyard.jobs.states import JobState

if TYPE_CHECKING:
    from shipyard.jobs.api import Job
    from shipyard.jobs.store import JobEvent, JobRecord

__all__ = ["format_status", "format_table", "format_progress", "watch", "elapsed", "summary",
           "TracebackFolder"]

_END = object()


class TracebackFolder:
    """Folds Python tracebacks in a log stream into one pointer line.

    ``run`` streams the attempt log to the screen; a failing job's traceback belongs in
    the log file (``shipyard logs ID``), not there. The exception line itself
    (``ValueError: boom``) is kept; chained tracebacks fold the same way.

    Examples
    --------
    >>> folder = TracebackFolder("(traceback folded)")
    >>> lines = ["start", "Traceback (most recent call last):", '  File "x.py", line 1',
    ...          "    raise ValueError('boom')", "ValueError: boom", "next"]
    >>> [out for line in lines for out in folder.feed(line)]
    ['start', '(traceback folded)', 'ValueError: boom', 'next']
    """

    _CHAIN = ("The above exception was the direct cause", "During handling of the above")

    def __init__(self, note: str):
        self.note = note
        self._state = "text"

    def feed(self, line: str) -> list[str]:
        """The lines to show for one incoming log line (often the line itself)."""
        if self._state == "text":
            if line.rstrip().endswith("Traceback (most recent call last):"):
                self._state = "frames"
                return [self.note]
            return [line]
        if self._state == "frames":
            if not line.strip() or line.startswith((" ", "\t")):
                return []  # frames, source lines, carets
            self._state = "after"
            return [line]  # the exception line
        if self._state == "after" and line.startswith(self._CHAIN):
            self._state = "chain"
            return []
        if self._state == "chain":
            if line.rstrip().endswith("Traceback (most recent call last):"):
                self._state = "frames"
            return []
        self._state = "text"
        return self.feed(line)


def _clock(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def elapsed(record: JobRecord, now: float | None = None) -> float:
    """Seconds the job has been running (until it finished), 0 before it started."""
    if record.started_at is None:
        return 0.0
    return (record.finished_at or now or time.time()) - record.started_at


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_progress(progress: dict[str, Any] | None) -> str:
    """One line for a progress dict: ``phase 3/10 message``.

    Examples
    --------
    >>> format_progress({"phase": "normalise", "done": 3, "total": 10})
    'normalise 3/10'
    """
    if not progress:
        return ""
    parts = [str(progress["phase"])] if progress.get("phase") else []
    if progress.get("total"):
        parts.append(f"{progress.get('done', 0):g}/{progress['total']:g}")
    elif progress.get("done") is not None:
        parts.append(f"{progress['done']:g}")
    if progress.get("message"):
        parts.append(str(progress["message"]))
    return " ".join(parts)


def _attempts(record: JobRecord) -> str:
    return f"attempt {record.attempt} of {record.max_attempts}"


def format_status(record: JobRecord, events: list[JobEvent], run_dir: str) -> str:
    """The human page of ``shipyard status``."""
    lines = [
        f"id:        {record.id}",
        f"name:      {record.name}",
        f"state:     {record.state} ({_attempts(record)})",
        f"reason:    {record.reason or '-'}",
        f"cluster:   {record.cluster} ({record.backend})",
        f"created:   {_clock(record.created_at)}",
        f"started:   {_clock(record.started_at)}",
        f"finished:  {_clock(record.finished_at)}",
    ]
    if record.progress:
        lines.append(f"progress:  {format_progress(record.progress) or '-'}")
        if record.progress.get("dashboard"):
            lines.append(f"dashboard: {record.progress['dashboard']}")
    lines.append(f"run dir:   {run_dir}")
    lines.append("events:")
    for event in events:
        stamp = datetime.fromtimestamp(event.ts, tz=timezone.utc).strftime("%H:%M:%S")
        state = event.state or ""
        lines.append(f"  {stamp}  {state:<9}  {event.message or ''}".rstrip())
    return "\n".join(lines)


def format_table(records: list[JobRecord]) -> str:
    """The table of ``shipyard list``."""
    header = ("ID", "STATE", "ATTEMPT", "CLUSTER", "CREATED", "REASON")
    rows = [header] + [
        (r.id, r.state.value, f"{r.attempt}/{r.max_attempts}", r.cluster,
         _clock(r.created_at), (r.reason or "")[:60])
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1]
        for row in rows
    ).rstrip()


def _status_line(record: JobRecord) -> str:
    text = f"{record.id}  {record.state}  {_attempts(record)}  {_duration(elapsed(record))}"
    progress = format_progress(record.progress)
    return f"{text}  {progress}" if progress else text


def _pump_logs(job: Job, lines: queue.Queue) -> None:
    try:
        for line in job.logs(follow=True):
            lines.put(line)
    finally:
        lines.put(_END)


def watch(job: Job, interactive: bool | None = None, out: TextIO | None = None,
          err: TextIO | None = None, poll: float = 0.1) -> JobRecord:
    """Stream the job's log and show its state until it ends; return the final record.

    Parameters
    ----------
    job : Job
    interactive : bool, optional
        A live rich view (default: when stdout is a terminal) or plain lines.
    out, err : text streams, optional
        Where log lines and state changes go (default stdout and stderr).
    poll : float
        Seconds between looks at the job's state.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if interactive is None:
        interactive = out.isatty()
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_pump_logs, args=(job, lines), daemon=True).start()
    folder = TracebackFolder(f"  (traceback folded: `shipyard logs {job.id}` shows it in full)")
    if interactive:
        return _watch_live(job, lines, folder, poll)
    return _watch_plain(job, lines, folder, poll, out, err)


def _drain(lines: queue.Queue, folder: TracebackFolder, emit: Callable[[str], None]) -> bool:
    """Print queued log lines (tracebacks folded); True once the log has ended."""
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return False
        if line is _END:
            return True
        for shown in folder.feed(line):
            emit(shown)


def _loop(job: Job, lines: queue.Queue, folder: TracebackFolder, poll: float,
          emit: Callable[[str], None], show: Callable[[JobRecord], None]) -> JobRecord:
    logs_done = False
    ended_at = None
    while True:
        logs_done = _drain(lines, folder, emit) or logs_done
        record = job.status()
        show(record)
        if record.state.is_terminal():
            ended_at = ended_at or time.monotonic()
            # the log pump finishes within a poll of the job ending; don't wait forever
            if logs_done or time.monotonic() - ended_at > 2.0:
                _drain(lines, folder, emit)
                return record
        time.sleep(poll)


def _watch_plain(job: Job, lines: queue.Queue, folder: TracebackFolder, poll: float,
                 out: TextIO, err: TextIO) -> JobRecord:
    seen: dict[str, Any] = {}

    def emit(line: str) -> None:
        print(line, file=out, flush=True)

    def show(record: JobRecord) -> None:
        key = (record.state, record.attempt)
        if seen.get("key") != key:
            seen["key"] = key
            reason = f": {record.reason}" if record.reason else ""
            print(f"[shipyard] {record.id} {record.state} ({_attempts(record)}){reason}",
                  file=err, flush=True)
        dashboard = (record.progress or {}).get("dashboard")
        if dashboard and seen.get("dashboard") != dashboard:
            seen["dashboard"] = dashboard
            print(f"[shipyard] Dask dashboard: {dashboard}", file=err, flush=True)

    return _loop(job, lines, folder, poll, emit, show)


def _watch_live(job: Job, lines: queue.Queue, folder: TracebackFolder,
                poll: float) -> JobRecord:
    from rich.console import Console, Group
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text

    console = Console()
    spinner = Spinner("dots")
    latest: dict[str, JobRecord] = {}

    def render() -> Group:
        record = latest.get("record")
        if record is None:
            return Group(Text("submitting..."))
        parts = [Text.assemble(spinner.render(time.time()), " ", _status_line(record))]
        dashboard = (record.progress or {}).get("dashboard")
        if dashboard:
            parts.append(Text(f"  Dask dashboard: {dashboard}", style="dim"))
        return Group(*parts)

    with Live(console=console, refresh_per_second=8, transient=True,
              get_renderable=render) as live:
        def emit(line: str) -> None:
            live.console.print(line, markup=False, highlight=False, soft_wrap=True)

        def show(record: JobRecord) -> None:
            latest["record"] = record

        record = _loop(job, lines, folder, poll, emit, show)
    return record


def summary(record: JobRecord, run_dir: str) -> str:
    """The closing lines of ``run``: how it ended and where the result and logs are."""
    took = _duration(elapsed(record))
    if record.state is JobState.SUCCEEDED:
        head = f"job {record.id} SUCCEEDED in {took}"
        result = f"\n  result: {run_dir}/result.json   (shipyard result {record.id})"
    else:
        head = f"job {record.id} {record.state} after {took}: {record.reason}"
        result = ""
    return (f"{head}{result}\n  logs:   {run_dir}/logs/   (shipyard logs {record.id})")
