"""The stages of each pipeline, in the job store (table ``stages``).

A pipeline is a row of ``jobs`` with ``kind = 'pipeline'``; each of its stages is a row
here, and a stage that runs is a job of its own (``job_id``). Stage states are those of
jobs plus ``SKIPPED`` (not run: a stage it needs failed, or the pipeline was cancelled).
Only the pipeline's driver writes them, except when a lost driver's pipeline is settled.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from shipyard.core.store import JobStore, iso_time

__all__ = ["StageRecord", "SKIPPED", "STAGE_TERMINAL", "add_stages", "stages", "update_stage",
           "last_succeeded"]

SKIPPED = "SKIPPED"
#: Stage states that never change again.
STAGE_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", SKIPPED})

#: The table, kept in the job store's database beside ``jobs`` (same transactions).
STAGES_TABLE = """
CREATE TABLE IF NOT EXISTS stages (
    pipeline_id  TEXT NOT NULL REFERENCES jobs (id),
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    workload     TEXT NOT NULL,
    needs        TEXT NOT NULL,
    state        TEXT NOT NULL,
    job_id       TEXT,
    cached       INTEGER NOT NULL DEFAULT 0,
    cache_key    TEXT,
    reused_from  TEXT,
    reason       TEXT,
    failure_kind TEXT,
    started_at   REAL,
    finished_at  REAL,
    PRIMARY KEY (pipeline_id, name)
);
"""

_UPDATABLE = frozenset({"state", "job_id", "cached", "cache_key", "reused_from", "reason",
                        "failure_kind", "started_at", "finished_at"})


@dataclass(frozen=True)
class StageRecord:
    """One stage of one pipeline run."""

    pipeline_id: str
    name: str
    position: int
    workload: str
    needs: list[str]
    state: str
    job_id: str | None = None
    cached: bool = False
    cache_key: str | None = None
    reused_from: str | None = None
    reason: str | None = None
    failure_kind: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def seconds(self) -> float | None:
        """Wall time from submission of the stage's job to its end (None if it did not run)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at, 3)

    def to_status(self) -> dict[str, Any]:
        """The stage as ``status --json`` and ``result.json`` show it."""
        data = {k: v for k, v in asdict(self).items() if k != "pipeline_id"}
        data["started_at"], data["finished_at"] = iso_time(self.started_at), iso_time(
            self.finished_at)
        data["seconds"] = self.seconds
        return data


def _table(store: JobStore) -> JobStore:
    store.ensure_table("stages", STAGES_TABLE)
    return store


def _record(row: Any) -> StageRecord:
    values = dict(row)
    values["needs"] = json.loads(values["needs"])
    values["cached"] = bool(values["cached"])
    return StageRecord(**values)


def add_stages(store: JobStore, pipeline_id: str, stages: list[dict[str, Any]]) -> None:
    """Insert a pipeline's stages, PENDING: ``[{"name", "workload", "needs"}]`` in order."""
    with _table(store).transaction() as conn:
        for position, stage in enumerate(stages):
            conn.execute(
                "INSERT INTO stages (pipeline_id, name, position, workload, needs, state)"
                " VALUES (?, ?, ?, ?, ?, 'PENDING')",
                (pipeline_id, stage["name"], position, stage["workload"],
                 json.dumps(stage["needs"])))


def stages(store: JobStore, pipeline_id: str) -> list[StageRecord]:
    """The pipeline's stages in spec order."""
    rows = _table(store).query(
        "SELECT * FROM stages WHERE pipeline_id = ? ORDER BY position", (pipeline_id,))
    return [_record(row) for row in rows]


def update_stage(store: JobStore, pipeline_id: str, name: str, *, note: str | None = None,
                 **fields: Any) -> None:
    """Set a stage's fields; ``note`` also goes to the pipeline's event log."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)} of a stage")
    if "cached" in fields:
        fields["cached"] = int(bool(fields["cached"]))
    columns = ", ".join(f"{key} = ?" for key in fields)
    with _table(store).transaction() as conn:
        conn.execute(f"UPDATE stages SET {columns} WHERE pipeline_id = ? AND name = ?",
                     (*fields.values(), pipeline_id, name))
        if note:
            store.log_event(conn, pipeline_id, time.time(), None, None, note)


def last_succeeded(store: JobStore, pipeline_name: str, stage: str) -> list[StageRecord]:
    """The SUCCEEDED runs of ``stage`` in the runs of the pipeline ``pipeline_name``,
    newest first."""
    rows = _table(store).query(
        "SELECT s.* FROM stages s JOIN jobs j ON j.id = s.pipeline_id"
        " WHERE j.name = ? AND j.kind = 'pipeline' AND s.name = ? AND s.state = 'SUCCEEDED'"
        " ORDER BY s.finished_at DESC", (pipeline_name, stage))
    return [_record(row) for row in rows]
