"""The job store: one SQLite database (WAL) with the jobs and their events.

Many processes write at once: the CLI submitting and cancelling, one supervisor per
running job, runners reporting progress. WAL lets readers go on while one writer
writes; every write is a short ``BEGIN IMMEDIATE`` transaction, and ``busy_timeout``
makes a second writer wait for the first instead of failing.

A terminal state never changes. :meth:`JobStore.transition` checks that in Python, and
a trigger checks it again in the database, so no writer can break the rule.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidTransitionError, JobNotFoundError
from shipyard.core.states import ALLOWED_TRANSITIONS, FailureKind, JobState

__all__ = ["JobStore", "JobRecord", "JobEvent", "iso_time"]

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    state              TEXT NOT NULL,
    reason             TEXT,
    failure_kind       TEXT,
    attempt            INTEGER NOT NULL DEFAULT 1,
    max_attempts       INTEGER NOT NULL DEFAULT 1,
    timeout_s          REAL,
    cluster            TEXT NOT NULL,
    backend            TEXT NOT NULL,
    cluster_address    TEXT,
    created_at         REAL NOT NULL,
    started_at         REAL,
    finished_at        REAL,
    progress           TEXT,
    cancel_requested   INTEGER NOT NULL DEFAULT 0,
    supervisor_pid     INTEGER,
    supervisor_started REAL,
    runner_pid         INTEGER,
    runner_started     REAL,
    workdir            TEXT,
    spec_dir           TEXT,
    labels             TEXT,
    external_id        TEXT,
    kind               TEXT NOT NULL DEFAULT 'job'
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state);
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id   TEXT NOT NULL REFERENCES jobs (id),
    ts       REAL NOT NULL,
    state    TEXT,
    attempt  INTEGER,
    message  TEXT
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq);
CREATE TRIGGER IF NOT EXISTS terminal_state_is_final
BEFORE UPDATE OF state, reason ON jobs
WHEN OLD.state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
     AND (NEW.state IS NOT OLD.state OR NEW.reason IS NOT OLD.reason)
BEGIN
    SELECT RAISE(ABORT, 'a job in a terminal state never changes');
END;
"""

#: Columns a caller may set with :meth:`JobStore.update` (never state or reason).
_UPDATABLE = frozenset({
    "supervisor_pid", "supervisor_started", "runner_pid", "runner_started",
    "external_id", "cluster_address",
})


def _statements(script: str) -> list[str]:
    """Split a SQL script into statements (a trigger body holds semicolons of its own)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements


def iso_time(ts: float | None) -> str | None:
    """An epoch time as ISO 8601 in UTC, to the millisecond; None stays None.

    Examples
    --------
    >>> iso_time(0.0), iso_time(1795571487.0575)
    ('1970-01-01T00:00:00.000+00:00', '2026-11-25T01:51:27.057+00:00')
    """
    if ts is None:
        return None
    millis = int(ts * 1000)
    # time.strftime is several times cheaper than datetime; `list` formats 30,000 of these
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + \
        f".{millis % 1000:03d}+00:00"


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text and text != "{}" else None


#: The columns of the status object, in the order :func:`_status` takes them.
_STATUS_COLUMNS = ("id, name, state, reason, attempt, cluster, created_at, started_at, "
                   "finished_at, progress, max_attempts, backend, failure_kind, labels")


def shown_progress(state: str, progress: dict | None) -> dict | None:
    """A job's progress as ``status`` shows it: a job that has ended keeps where it got
    to, but no ETA (its last estimate was a forecast of a run that is over).

    Examples
    --------
    >>> shown_progress("CANCELLED", {"phase": "train", "done": 3, "eta_seconds": 55})
    {'phase': 'train', 'done': 3}
    """
    if progress and "eta_seconds" in progress and _STATES[state].is_terminal():
        return {key: value for key, value in progress.items() if key != "eta_seconds"}
    return progress


def _status(id: str, name: str, state: str, reason: str | None, attempt: int, cluster: str,
            created_at: float, started_at: float | None, finished_at: float | None,
            progress: dict | None, max_attempts: int, backend: str,
            failure_kind: str | None, labels: dict | None) -> dict[str, Any]:
    """The ``status --json`` object (DESIGN.md "JSON shapes"), plus a few extra keys."""
    return {
        "id": id,
        "name": name,
        "state": state,
        "reason": reason,
        "attempt": attempt,
        "cluster": cluster,
        "created_at": iso_time(created_at),
        "started_at": iso_time(started_at),
        "finished_at": iso_time(finished_at),
        "progress": shown_progress(state, progress),
        "max_attempts": max_attempts,
        "backend": backend,
        "failure_kind": failure_kind,
        "labels": labels or {},
    }


_STATES = {state.value: state for state in JobState}


@dataclass(frozen=True)
class JobRecord:
    """One row of the job store."""

    id: str
    name: str
    state: JobState
    reason: str | None
    failure_kind: str | None
    attempt: int
    max_attempts: int
    timeout_s: float | None
    cluster: str
    backend: str
    cluster_address: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: dict[str, Any] | None
    cancel_requested: bool
    supervisor_pid: int | None
    supervisor_started: float | None
    runner_pid: int | None
    runner_started: float | None
    workdir: str | None
    spec_dir: str | None
    labels: dict[str, str] = field(default_factory=dict)
    external_id: str | None = None
    #: ``job``, or ``pipeline`` (its stages are jobs of their own)
    kind: str = "job"

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> JobRecord:
        values = dict(row)
        values["state"] = _STATES[values["state"]]
        values["progress"] = _json_or_none(values["progress"])
        values["labels"] = _json_or_none(values["labels"]) or {}
        values["cancel_requested"] = bool(values["cancel_requested"])
        return cls(**values)

    def to_status(self) -> dict[str, Any]:
        """The ``status --json`` object (DESIGN.md "JSON shapes"), plus a few extra keys."""
        return _status(self.id, self.name, self.state.value, self.reason, self.attempt,
                       self.cluster, self.created_at, self.started_at, self.finished_at,
                       self.progress, self.max_attempts, self.backend, self.failure_kind,
                       self.labels)


@dataclass(frozen=True)
class JobEvent:
    """One entry of a job's event log: a state change or a note."""

    seq: int
    job_id: str
    ts: float
    state: str | None
    attempt: int | None
    message: str | None


class JobStore:
    """The SQLite job store under ``SHIPYARD_HOME``.

    Parameters
    ----------
    path : Path
        The database file; created (with its directory) on first use.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> store = JobStore(pathlib.Path(tempfile.mkdtemp()) / "jobs.db")
    >>> record = store.create(lambda: "demo-20260101-000000-abcd", name="demo",
    ...                       cluster="local", backend="local")
    >>> store.transition(record.id, JobState.RUNNING).state
    <JobState.RUNNING: 'RUNNING'>
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        #: tables of layers above created through this object (:meth:`ensure_table`)
        self._tables: set[str] = set()

    # -- connections -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections must not cross
        # threads, and must not survive a fork.
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        if conn.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
            self._create_schema(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        for _ in range(50):  # switching to WAL needs a moment without other writers
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                time.sleep(0.05)
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != _SCHEMA_VERSION:
                if version == 1:  # before pipelines: jobs had no kind
                    conn.execute("ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'job'")
                for statement in _statements(_SCHEMA):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed when the block ends,
        rolled back if it raises. Tables of layers above (the pipelines' stages) are
        written through it, in the same database and the same transactions."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, parameters: tuple = ()) -> list[sqlite3.Row]:
        """The rows of one read (the pipelines read their own table, and ``jobs``)."""
        return self._connection().execute(sql, parameters).fetchall()

    def ensure_table(self, name: str, ddl: str) -> None:
        """Create the table ``name`` that a layer above keeps in this database, with
        ``ddl`` (``CREATE TABLE IF NOT EXISTS name ...``), if it is not there yet.

        Asked once per store object; a store that has the table is only read.
        """
        if name in self._tables:
            return
        if not self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (name,)):
            with self.transaction() as conn:
                for statement in _statements(ddl):
                    conn.execute(statement)
        self._tables.add(name)

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- reading -----------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the database file exists (reading never needs to create it)."""
        return self.path.exists()

    def get(self, job_id: str) -> JobRecord:
        """The job's record.

        Raises
        ------
        JobNotFoundError
            When no job has that id; the message suggests ids that start alike.
        """
        row = None
        if self.exists():
            row = self._connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(self._not_found_message(job_id))
        return JobRecord._from_row(row)

    def _not_found_message(self, job_id: str) -> str:
        near: list[str] = []
        if self.exists():
            prefix = job_id.split("-2", 1)[0]
            near = [r[0] for r in self._connection().execute(
                "SELECT id FROM jobs WHERE id LIKE ? ORDER BY created_at DESC LIMIT 3",
                (prefix + "%",))]
        hint = f"; recent jobs with that name: {', '.join(near)}" if near else \
            "; `shipyard list` shows the jobs there are"
        return f"no job with id {job_id!r} in {self.path}{hint}"

    def list(self, states: set[JobState] | None = None, limit: int | None = None) -> list[JobRecord]:
        """Jobs, oldest first (the order ids sort in), optionally only some states."""
        if not self.exists():
            return []
        where, args = "", []
        if states:
            where = f" WHERE state IN ({', '.join('?' * len(states))})"
            args.extend(s.value for s in states)
        if limit is None:
            query = f"SELECT * FROM jobs{where} ORDER BY created_at, id"
        else:  # the newest `limit` jobs, still shown oldest first
            query = (f"SELECT * FROM (SELECT * FROM jobs{where} ORDER BY created_at DESC, id DESC"
                     f" LIMIT ?) ORDER BY created_at, id")
            args.append(limit)
        rows = self._connection().execute(query, args).fetchall()
        return [JobRecord._from_row(row) for row in rows]

    def statuses(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Every job's status object, oldest first, read straight from the table.

        The same objects as ``[r.to_status() for r in self.list()]``, several times
        cheaper: ``shipyard list --json`` over 10,000 jobs must answer in well under
        a second. Unfinished jobs are not reconciled here (the API does that first).
        """
        if not self.exists():
            return []
        query = f"SELECT {_STATUS_COLUMNS} FROM jobs ORDER BY created_at, id"
        args: list[Any] = []
        if limit is not None:
            query = (f"SELECT * FROM (SELECT {_STATUS_COLUMNS} FROM jobs ORDER BY created_at "
                     f"DESC, id DESC LIMIT ?) ORDER BY created_at, id")
            args.append(limit)
        loads = _json_or_none
        return [_status(*row[:9], loads(row[9]), *row[10:13], loads(row[13]))
                for row in self._connection().execute(query, args)]

    def events(self, job_id: str) -> list[JobEvent]:
        """The job's event log, oldest first."""
        rows = self._connection().execute(
            "SELECT * FROM events WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
        return [JobEvent(**dict(row)) for row in rows]

    # -- writing -----------------------------------------------------------------------

    def create(
        self,
        make_id: Callable[[], str],
        *,
        name: str,
        cluster: str,
        backend: str,
        max_attempts: int = 1,
        timeout_s: float | None = None,
        cluster_address: str | None = None,
        workdir: str | None = None,
        spec_dir: str | None = None,
        labels: dict[str, str] | None = None,
        kind: str = "job",
    ) -> JobRecord:
        """Insert a new PENDING job (or pipeline, ``kind``); ``make_id`` is called again if
        its id is taken."""
        now = time.time()
        for _ in range(20):
            job_id = make_id()
            try:
                with self.transaction() as conn:
                    conn.execute(
                        "INSERT INTO jobs (id, name, state, attempt, max_attempts, timeout_s,"
                        " cluster, backend, cluster_address, created_at, workdir, spec_dir,"
                        " labels, kind) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (job_id, name, JobState.PENDING.value, max_attempts, timeout_s,
                         cluster, backend, cluster_address, now, workdir, spec_dir,
                         json.dumps(labels or {}), kind),
                    )
                    self.log_event(conn, job_id, now, JobState.PENDING.value, 1, "submitted")
                return self.get(job_id)
            except sqlite3.IntegrityError:
                continue  # the same id drawn in the same second: draw again
        raise RuntimeError("could not draw a free job id in 20 tries")

    def transition(
        self,
        job_id: str,
        to: JobState,
        reason: str | None = None,
        *,
        failure_kind: FailureKind | str | None = None,
        next_attempt: bool = False,
        if_attempt: int | None = None,
    ) -> JobRecord | None:
        """Move the job to state ``to``; return the new record, or None if it had already ended
        (or was not at attempt ``if_attempt``).

        Parameters
        ----------
        job_id : str
        to : JobState
        reason : str, optional
            Why (kept as the job's ``reason`` and in the event log).
        failure_kind : FailureKind, optional
            For FAILED: what kind of failure (decides the CLI exit code).
        next_attempt : bool
            For a retry (RUNNING -> PENDING): raise the attempt number.
        if_attempt : int, optional
            Only if the job is still at this attempt: several processes may see the same
            attempt end, and only the first may act on it.

        Raises
        ------
        InvalidTransitionError
            When the state machine does not allow ``from -> to`` (e.g. PENDING -> SUCCEEDED).
        """
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT state, attempt, started_at FROM jobs WHERE id = ?",
                               (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"no job with id {job_id!r}")
            current = JobState(row["state"])
            if current.is_terminal() or (if_attempt is not None and row["attempt"] != if_attempt):
                return None
            if to not in ALLOWED_TRANSITIONS[current]:
                raise InvalidTransitionError(f"job {job_id}: {current} -> {to} is not allowed")
            attempt = row["attempt"] + (1 if next_attempt else 0)
            started = row["started_at"] if row["started_at"] is not None else (
                now if to is JobState.RUNNING else None)
            finished = now if to.is_terminal() else None
            conn.execute(
                "UPDATE jobs SET state = ?, reason = ?, failure_kind = ?, attempt = ?,"
                " started_at = ?, finished_at = ? WHERE id = ?",
                (to.value, reason, str(failure_kind) if failure_kind else None, attempt,
                 started, finished, job_id),
            )
            self.log_event(conn, job_id, now, to.value, attempt, reason)
        return self.get(job_id)

    def update(self, job_id: str, *, if_values: dict[str, Any] | None = None,
               **fields: Any) -> bool:
        """Set bookkeeping columns (process ids, external ids); never state or reason.

        With ``if_values`` only while those columns hold those values (compare and set:
        of two processes that both saw the same value, one wins). Returns whether the
        row was changed."""
        unknown = (set(fields) | set(if_values or {})) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} with update()")
        columns = ", ".join(f"{name} = ?" for name in fields)
        guards = "".join(f" AND {name} IS ?" for name in (if_values or {}))
        with self.transaction() as conn:
            return bool(conn.execute(
                f"UPDATE jobs SET {columns} WHERE id = ?{guards}",
                (*fields.values(), job_id, *(if_values or {}).values())).rowcount)

    def set_reason(self, job_id: str, reason: str | None, *, if_state: JobState,
                   if_attempt: int) -> bool:
        """Say why the job is in its current state without changing it (a pending job
        whose pod cannot start: ``ImagePullBackOff: ...``); logged when it changes.

        Returns whether the reason changed (only if the job is still ``if_state`` at
        ``if_attempt``)."""
        with self.transaction() as conn:
            changed = conn.execute(
                "UPDATE jobs SET reason = ? WHERE id = ? AND state = ? AND attempt = ?"
                " AND reason IS NOT ?", (reason, job_id, if_state.value, if_attempt, reason),
            ).rowcount
            if changed:
                self.log_event(conn, job_id, time.time(), None, if_attempt, reason)
        return bool(changed)

    def set_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        """Replace the job's progress (whatever the workload last reported)."""
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET progress = ? WHERE id = ?",
                         (json.dumps(progress, default=str), job_id))

    def request_cancel(self, job_id: str) -> None:
        """Flag the job for cancellation; its supervisor acts on the flag."""
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            self.log_event(conn, job_id, time.time(), None, None, "cancel requested")

    def note(self, job_id: str, message: str, attempt: int | None = None) -> None:
        """Add an entry to the job's event log without changing its state."""
        with self.transaction() as conn:
            self.log_event(conn, job_id, time.time(), None, attempt, message)

    @staticmethod
    def log_event(conn: sqlite3.Connection, job_id: str, ts: float, state: str | None,
                  attempt: int | None, message: str | None) -> None:
        """Add an event to the job's log inside the transaction ``conn``."""
        conn.execute("INSERT INTO events (job_id, ts, state, attempt, message) VALUES (?, ?, ?, ?, ?)",
                     (job_id, ts, state, attempt, message))
