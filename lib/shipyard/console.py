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

from shipyard.core.states import JobState
from shipyard.core.store import shown_progress
from shipyard.core.units import format_utc

if TYPE_CHECKING:
    from shipyard.jobs.api import Job
    from shipyard.core.store import JobEvent, JobRecord

__all__ = ["format_status", "format_table", "format_progress", "dashboards",
           "watch", "elapsed", "summary", "TracebackFolder"]

_END = object()


class TracebackFolder:
    """Folds Python tracebacks in a log stream into one pointer line.

    ``run`` streams the attempt log to the screen; a failing job's traceback belongs in
    the log file (``shipyard logs ID``), not there. The exception line itself
    (``ValueError: boom``) is kept; chained tracebacks fold the same way.

    Parameters
    ----------
    note : str
        The line shown in place of each traceback.
    split : callable, optional
        For a log that interleaves the lines of several sources, each line prefixed with
        its source (a pipeline's: ``[stage] line``): splits a line into ``(prefix,
        text)`` with ``prefix + text == line``. Each source's tracebacks then fold on
        their own, and the lines shown keep their prefix.

    Examples
    --------
    >>> folder = TracebackFolder("(traceback folded)")
    >>> lines = ["start", "Traceback (most recent call last):", '  File "x.py", line 1',
    ...          "    raise ValueError('boom')", "ValueError: boom", "next"]
    >>> [out for line in lines for out in folder.feed(line)]
    ['start', '(traceback folded)', 'ValueError: boom', 'next']
    >>> def split(line):
    ...     prefix = line[:line.index("] ") + 2] if line.startswith("[") else ""
    ...     return prefix, line[len(prefix):]
    >>> folder = TracebackFolder(" (folded)", split=split)
    >>> lines = ["[a] Traceback (most recent call last):", "[b] working",
    ...          '[a]   File "x.py", line 1', "[a] ValueError: boom", "[b] done"]
    >>> [out for line in lines for out in folder.feed(line)]
    ['[a]  (folded)', '[b] working', '[a] ValueError: boom', '[b] done']
    """

    _CHAIN = ("The above exception was the direct cause", "During handling of the above")

    def __init__(self, note: str, split: Callable[[str], tuple[str, str]] | None = None):
        self.note = note
        self._split = split
        self._states: dict[str, str] = {}  # per source (its prefix): where its lines are
        self._held: dict[str, str] = {}    # per source: a blank line not shown yet

    def feed(self, line: str) -> list[str]:
        """The lines to show for one incoming log line (often the line itself)."""
        prefix, text = self._split(line) if self._split is not None else ("", line)
        return [prefix + shown for shown in self._fold(prefix, text)]

    def _fold(self, source: str, line: str) -> list[str]:
        state = self._states.get(source, "text")
        if state == "text":
            if line.rstrip().endswith("Traceback (most recent call last):"):
                self._states[source] = "frames"
                return [self.note]
            return [line]
        if state == "frames":
            if not line.strip() or line.startswith((" ", "\t")):
                return []  # frames, source lines, carets
            self._states[source] = "after"
            return [line]  # the exception line
        if state in ("after", "after blank"):
            if line.startswith(self._CHAIN):
                self._states[source] = "chain"
                return []
            if state == "after" and not line.strip():
                # Python puts a blank line before "The above exception ...": hold it
                # until the next line says whether a chained traceback follows
                self._states[source] = "after blank"
                self._held[source] = line
                return []
            self._states[source] = "text"
            held = [self._held.pop(source)] if state == "after blank" else []
            return held + self._fold(source, line)
        # chain: its message and blank lines, up to the next traceback's header
        if line.rstrip().endswith("Traceback (most recent call last):"):
            self._states[source] = "frames"
        return []


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
    """One line for a progress dict: phase, how far (``3/10 epochs``), the phase's Dask
    tasks, the ETA and the message.

    Examples
    --------
    >>> format_progress({"phase": "normalise", "done": 3, "total": 10})
    'normalise 3/10'
    >>> format_progress({"phase": "train", "done": 3, "total": 20, "unit": "epochs",
    ...                  "eta_seconds": 75})
    'train 3/20 epochs, ETA 01:15'
    >>> format_progress({"phase": "compute", "tasks": {"done": 40, "total": 160}})
    'compute, tasks 40/160'
    """
    if not progress:
        return ""
    head = [str(progress["phase"])] if progress.get("phase") else []
    if progress.get("total"):
        head.append(f"{progress.get('done', 0):g}/{progress['total']:g}")
    elif progress.get("done") is not None:
        head.append(f"{progress['done']:g}")
    if progress.get("unit") and len(head) > 1:
        head.append(str(progress["unit"]))
    parts = [" ".join(head)] if head else []
    tasks = progress.get("tasks") or {}
    if tasks.get("total"):
        parts.append(f"tasks {tasks.get('done', 0)}/{tasks['total']}")
    if progress.get("eta_seconds") is not None:
        parts.append(f"ETA {_duration(progress['eta_seconds'])}")
    if progress.get("message"):
        parts.append(str(progress["message"]))
    return ", ".join(parts)


def dashboards(progress: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The ``(label, url)`` of the Dask and Ray dashboards a job's progress names."""
    progress = progress or {}
    return [(label, progress[key]) for key, label in (("dashboard", "Dask dashboard"),
                                                      ("ray_dashboard", "Ray dashboard"))
            if progress.get(key)]


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
        f"created:   {format_utc(record.created_at)}",
        f"started:   {format_utc(record.started_at)}",
        f"finished:  {format_utc(record.finished_at)}",
    ]
    if record.progress:
        progress = shown_progress(record.state.value, record.progress)
        lines.append(f"progress:  {format_progress(progress) or '-'}")
        for label, url in dashboards(record.progress):
            lines.append(f"{label.split()[0].lower() + ':':<10} {url}")
    lines.append(f"run dir:   {run_dir}")
    lines.append("events:")
    for event in events:
        stamp = datetime.fromtimestamp(event.ts, tz=timezone.utc).strftime("%H:%M:%S")
        state = event.state or ""
        lines.append(f"  {stamp}  {state:<9}  {event.message or ''}".rstrip())
    return "\n".join(lines)


def format_stages(stages: list[dict[str, Any]]) -> str:
    """A pipeline's stages, one line each: state, cached, wall time, job id, reason.

    Examples
    --------
    >>> print(format_stages([{"name": "prep", "state": "SUCCEEDED", "cached": True,
    ...                       "seconds": 0.0, "job_id": "p-prep-1", "reason": None}]))
      prep  SUCCEEDED  cached  0.0 s  p-prep-1
    """
    rows = []
    for stage in stages:
        seconds = stage.get("seconds")
        rows.append((stage["name"], stage["state"], "cached" if stage.get("cached") else "",
                     "" if seconds is None else f"{seconds:.1f} s", stage.get("job_id") or "",
                     stage.get("reason") or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        ("  " + "  ".join(c.ljust(w) for c, w in zip(row[:5], widths) if w) + "  " + row[5])
        .rstrip() for row in rows)


def format_table(records: list[JobRecord]) -> str:
    """The table of ``shipyard list``."""
    header = ("ID", "STATE", "ATTEMPT", "CLUSTER", "CREATED", "REASON")
    rows = [header] + [
        (r.id, r.state.value, f"{r.attempt}/{r.max_attempts}", r.cluster,
         format_utc(r.created_at), (r.reason or "")[:60])
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1]
        for row in rows
    ).rstrip()


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
    split = None
    if job.is_pipeline:
        # its log interleaves its stages' logs, each line prefixed with its stage
        from shipyard.pipelines.driver import split_stage_line as split
    folder = TracebackFolder(f"  (traceback folded: `shipyard logs {job.id}` shows it in full)",
                             split=split)
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
                 out: TextIO, err: TextIO, every: float = 10.0) -> JobRecord:
    """Log lines on ``out``; on ``err`` a line per state change, per phase, each
    dashboard once, and the progress at most every ``every`` seconds while it moves."""
    seen: dict[str, Any] = {"shown_at": 0.0}

    def emit(line: str) -> None:
        print(line, file=out, flush=True)

    def note(text: str) -> None:
        print(f"[shipyard] {text}", file=err, flush=True)

    def show(record: JobRecord) -> None:
        key = (record.state, record.attempt)
        if seen.get("key") != key:
            seen["key"] = key
            reason = f": {record.reason}" if record.reason else ""
            note(f"{record.id} {record.state} ({_attempts(record)}){reason}")
        progress = record.progress or {}
        for label, url in dashboards(progress):
            if seen.get(label) != url:
                seen[label] = url
                note(f"{label}: {url}")
        if record.state.is_terminal() or not progress.get("phase"):
            return
        line = format_progress(progress)
        new_phase = seen.get("phase") != (record.attempt, progress["phase"])
        due = time.monotonic() - seen["shown_at"] >= every and line != seen.get("line")
        if new_phase or due:
            seen.update(phase=(record.attempt, progress["phase"]), line=line,
                        shown_at=time.monotonic())
            note(f"{_duration(elapsed(record))} {line}")

    return _loop(job, lines, folder, poll, emit, show)


def live_view(record: JobRecord | None, now: float | None = None):
    """The rich renderable of ``run``'s live view: state, attempt, elapsed, the phase
    with a bar for its tasks or epochs, the ETA, and the dashboards' URLs."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.spinner import Spinner
    from rich.table import Table
    from rich.text import Text

    now = time.time() if now is None else now
    if record is None:
        return Text("submitting...")
    progress = record.progress or {}
    head = Text.assemble(Spinner("dots").render(now), " ", (record.id, "bold"), "  ",
                         (str(record.state), "cyan"), f"  {_attempts(record)}  ",
                         _duration(elapsed(record, now)))
    rows: list[Any] = [head]
    if progress.get("phase") and not record.state.is_terminal():
        grid = Table.grid(padding=(0, 1))
        tasks = progress.get("tasks") or {}
        if tasks.get("total"):
            done, total, what = tasks.get("done", 0), tasks["total"], "tasks"
        elif progress.get("total"):
            done, total = progress.get("done", 0), progress["total"]
            what = progress.get("unit") or ""
        else:
            done = total = None
            what = ""
        bar = (ProgressBar(total=total, completed=done, width=30) if total else Text(""))
        counts = f"{done:g}/{total:g} {what}".rstrip() if total else ""
        eta = (f"ETA {_duration(progress['eta_seconds'])}"
               if progress.get("eta_seconds") is not None else "")
        grid.add_row(Text(f"  {progress['phase']}"), bar, Text(counts), Text(eta, style="dim"))
        rows.append(grid)
        if progress.get("message"):
            rows.append(Text(f"  {progress['message']}", style="dim"))
    for label, url in dashboards(progress):
        rows.append(Text(f"  {label}: {url}", style="dim"))
    return Group(*rows)


def _watch_live(job: Job, lines: queue.Queue, folder: TracebackFolder,
                poll: float) -> JobRecord:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    latest: dict[str, JobRecord] = {}

    with Live(console=console, refresh_per_second=8, transient=True,
              get_renderable=lambda: live_view(latest.get("record"))) as live:
        def emit(line: str) -> None:
            live.console.print(line, markup=False, highlight=False, soft_wrap=True)

        def show(record: JobRecord) -> None:
            latest["record"] = record

        record = _loop(job, lines, folder, poll, emit, show)
    return record


def summary(record: JobRecord, run_dir: str) -> str:
    """The closing lines of ``run``: how it ended and where the result, report and logs are."""
    took = _duration(elapsed(record))
    lines = []
    what = record.kind if record.kind == "pipeline" else "job"
    if record.state is JobState.SUCCEEDED:
        lines.append(f"{what} {record.id} SUCCEEDED in {took}")
        lines.append(f"  result: {run_dir}/result.json   (shipyard result {record.id})")
    else:
        lines.append(f"{what} {record.id} {record.state} after {took}: {record.reason}")
    lines.append(f"  report: {run_dir}/report/index.html   (shipyard report {record.id} --open)")
    lines.append(f"  logs:   {run_dir}/logs/   (shipyard logs {record.id})")
    return "\n".join(lines)
