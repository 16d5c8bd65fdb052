"""Where shipyard keeps things: ``SHIPYARD_HOME`` (default ``~/.shipyard``).

::

    $SHIPYARD_HOME/
      jobs.db                      the job store (SQLite, WAL)
      clusters/                    user cluster profiles and running local clusters' state
      runs/<job-id>/
        spec.yaml                  the spec as submitted (overrides applied)
        logs/attempt-<n>.log       everything an attempt printed
        logs/attempt-<n>.outcome.json   how the attempt ended (written by the runner)
        logs/supervisor.log        the supervisor's own messages
        progress.json              the latest progress the workload reported
        result.json                the job's result
        report/  artifacts/
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Home", "attempt_log_path", "attempt_outcome_path", "read_outcome"]


def attempt_log_path(run_dir: Path, attempt: int) -> Path:
    """``<run dir>/logs/attempt-<n>.log``: everything attempt ``n`` printed."""
    return Path(run_dir) / "logs" / f"attempt-{attempt}.log"


def attempt_outcome_path(run_dir: Path, attempt: int) -> Path:
    """``<run dir>/logs/attempt-<n>.outcome.json``: how attempt ``n`` ended."""
    return Path(run_dir) / "logs" / f"attempt-{attempt}.outcome.json"


def read_outcome(run_dir: Path, attempt: int) -> dict[str, Any] | None:
    """How attempt ``n`` ended, as its runner wrote it; None where it wrote nothing
    readable (killed, or a cluster that does not share this filesystem)."""
    try:
        return json.loads(attempt_outcome_path(run_dir, attempt).read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Home:
    """The paths under one ``SHIPYARD_HOME``.

    Parameters
    ----------
    root : Path
        The home directory itself.
    """

    root: Path

    @classmethod
    def from_env(cls, root: str | os.PathLike | None = None) -> Home:
        """The home named by ``root``, else ``$SHIPYARD_HOME``, else ``~/.shipyard``."""
        chosen = root or os.environ.get("SHIPYARD_HOME") or Path.home() / ".shipyard"
        return cls(Path(chosen).expanduser().resolve())

    @property
    def db(self) -> Path:
        return self.root / "jobs.db"

    @property
    def clusters(self) -> Path:
        return self.root / "clusters"

    def run_dir(self, job_id: str) -> Path:
        return self.root / "runs" / job_id

    def attempt_log(self, job_id: str, attempt: int) -> Path:
        return attempt_log_path(self.run_dir(job_id), attempt)
