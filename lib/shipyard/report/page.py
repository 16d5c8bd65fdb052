"""The job's HTML report: one self-contained page, ``runs/<id>/report/index.html``.

The page holds the job's state, the timings per phase, the workload's result tables
(:mod:`shipyard.report.tables`), the figures (embedded as PNG data URIs, so the one file
can be mailed or kept as a CI artifact; the PNGs also lie beside it), the log tail when
the attempt failed, and the spec. It uses no JavaScript and loads nothing from elsewhere.
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.core.atomic import write_text_atomic
from shipyard.report.tables import Table, result_tables
from shipyard.core.units import format_utc

__all__ = ["ReportData", "render_report", "write_report", "REPORT_PATH", "LOG_TAIL_LINES"]

#: The page, relative to the run directory.
REPORT_PATH = Path("report") / "index.html"

#: Lines of the attempt log shown on a failed job's page.
LOG_TAIL_LINES = 60


@dataclass
class ReportData:
    """Everything the page shows, gathered by whoever writes it (the runner, or
    ``shipyard report`` rebuilding the page of a job whose runner could not).

    ``figures`` are ``{"name", "title", "path", "caption"}`` with paths relative to
    ``run_dir``; ``phases`` are ``{"phase", "seconds"}``.
    """

    run_dir: Path
    job_id: str
    name: str
    state: str
    attempt: int
    workload: str | None = None
    reason: str | None = None
    cluster: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    spec_text: str = ""
    result: dict[str, Any] | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    log_tail: list[str] | None = None
    log_hint: str | None = None


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2430;
background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid
#d8dde5;padding-bottom:4px}h3{font-size:14px;margin:16px 0 6px}
.meta{color:#566173}.meta span{margin-right:18px}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;color:#fff}
.SUCCEEDED{background:#2e7d32}.FAILED{background:#c62828}.CANCELLED{background:#6d6d6d}
.RUNNING,.PENDING{background:#1565c0}
.reason{margin:10px 0;padding:8px 12px;background:#fdecea;border-left:4px solid #c62828}
table{border-collapse:collapse;background:#fff;margin:4px 0 12px;font-variant-numeric:
tabular-nums}th,td{border:1px solid #d8dde5;padding:4px 10px;text-align:left;
vertical-align:top}th{background:#eef1f5;font-weight:600}td.num{text-align:right}
.bar{display:inline-block;height:10px;background:#5c8fd6;border-radius:2px;
vertical-align:middle}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
figure{margin:0;background:#fff;border:1px solid #d8dde5;border-radius:6px;padding:10px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{color:#566173;margin-top:6px}figcaption b{color:#1d2430}
pre{background:#10151d;color:#e6e9ef;padding:12px;border-radius:6px;overflow-x:auto;
font-size:12px;line-height:1.4}
.note{color:#566173}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s"


def _number(value: float) -> str:
    """Four significant digits, large numbers in full with separators.

    Examples
    --------
    >>> _number(0.97364), _number(59980.31), _number(1.5e-05)
    ('0.9736', '59,980.3', '1.5e-05')
    """
    return f"{value:,.1f}" if abs(value) >= 10_000 else f"{value:.4g}"


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in table.columns)
    rows = []
    for row in table.rows:
        cells = []
        for value in row:
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            shown = _number(value) if isinstance(value, float) else value
            cells.append(f'<td class="num">{_esc(shown)}</td>' if numeric
                         else f"<td>{_esc('' if shown is None else shown)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    title = f"<h3>{_esc(table.title)}</h3>" if table.title else ""
    note = f'<p class="note">{_esc(table.note)}</p>' if table.note else ""
    return f"{title}<table><tr>{head}</tr>{''.join(rows)}</table>{note}"


def _phases_html(phases: list[dict[str, Any]]) -> str:
    timed = [p for p in phases if p.get("seconds") is not None]
    if not timed:
        return '<p class="note">No phases were recorded.</p>'
    longest = max(p["seconds"] for p in timed) or 1.0
    total = sum(p["seconds"] for p in timed)
    rows = "".join(
        f"<tr><td>{_esc(p['phase'])}</td><td class=\"num\">{p['seconds']:.2f}</td>"
        f"<td class=\"num\">{100 * p['seconds'] / total if total else 0:.0f}%</td>"
        f"<td><span class=\"bar\" style=\"width:{max(1, round(300 * p['seconds'] / longest))}px\">"
        "</span></td></tr>" for p in timed)
    return ("<table><tr><th>phase</th><th>seconds</th><th>share</th><th></th></tr>"
            f"{rows}</table>")


def _figure_html(run_dir: Path, entry: dict[str, Any]) -> str:
    path = run_dir / entry["path"]
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return (f"<figure><figcaption><b>{_esc(entry.get('title', entry['name']))}</b>: "
                f"{_esc(entry['path'])} is missing</figcaption></figure>")
    caption = entry.get("caption", "")
    return (f'<figure id="fig-{_esc(entry["name"])}"><img alt="{_esc(entry.get("title", ""))}" '
            f'src="data:image/png;base64,{data}"><figcaption><b>{_esc(entry.get("title", ""))}'
            f"</b>{'. ' + _esc(caption) if caption else ''}</figcaption></figure>")


def render_report(data: ReportData) -> str:
    """The page's HTML text."""
    took = (data.finished_at - data.started_at
            if data.started_at is not None and data.finished_at is not None else None)
    meta = [f"<span>id <code>{_esc(data.job_id)}</code></span>",
            f"<span>attempt {data.attempt}</span>"]
    if data.workload:
        meta.append(f"<span>{_esc(data.workload)} job</span>")
    if data.cluster:
        meta.append(f"<span>cluster {_esc(data.cluster)}</span>")
    meta.append(f"<span>started {format_utc(data.started_at)}</span>")
    if took is not None:
        meta.append(f"<span>took {_duration(took)}</span>")
    parts = [
        f"<h1>{_esc(data.name)} <span class=\"state {_esc(data.state)}\">{_esc(data.state)}"
        "</span></h1>",
        f"<p class=\"meta\">{''.join(meta)}</p>",
    ]
    if data.reason and data.state != "SUCCEEDED":
        parts.append(f'<div class="reason">{_esc(data.reason)}</div>')
    if data.result is not None:
        tables = result_tables(data.workload, data.result)
        if tables:
            parts.append("<h2>Results</h2>")
            parts.extend(_table_html(t) for t in tables)
    if data.figures:
        parts.append("<h2>Figures</h2><div class=\"figures\">")
        parts.extend(_figure_html(data.run_dir, f) for f in data.figures)
        parts.append("</div>")
    parts.append("<h2>Timings per phase</h2>")
    parts.append(_phases_html(data.phases))
    if data.log_tail is not None or data.log_hint:
        parts.append(f"<h2>Log (last {LOG_TAIL_LINES} lines)</h2>")
        if data.log_tail:
            parts.append(f"<pre>{_esc(chr(10).join(data.log_tail))}</pre>")
        if data.log_hint:
            parts.append(f'<p class="note">{_esc(data.log_hint)}</p>')
    if data.result is not None:
        listed = {k: data.result[k] for k in ("outputs", "artifacts") if data.result.get(k)}
        if listed:
            parts.append("<h2>Outputs and artifacts</h2>")
            parts.append(f"<pre>{_esc(json.dumps(listed, indent=2))}</pre>")
    if data.spec_text:
        parts.append(f"<h2>Spec</h2><pre>{_esc(data.spec_text)}</pre>")
    where = (f" The full result: <code>shipyard result {_esc(data.job_id)}</code>."
             if data.result is not None else "")
    parts.append(f'<p class="note">Written {format_utc(time.time())} by shipyard.{where}</p>')
    title = f"{data.name} — {data.state} — shipyard report"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>"
            + "\n".join(parts) + "</main></body></html>\n")


def write_report(data: ReportData) -> Path:
    """Write the page to ``<run dir>/report/index.html`` (atomically); return its path."""
    path = data.run_dir / REPORT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, render_report(data))
    return path
