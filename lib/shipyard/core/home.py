"""Where shipyard keeps things: ``SHIPYARD_HOME`` (default ``~/.shipyard``).

::

    $SHIPYARD_HOME/
      jobs.db                      the job store (SQLite, WAL)
      clusters/                    user cluster profiles and running local clusters' state
      cache/code/<digest>.zip      code packages shipped to clusters that share no disk
      runs/<job-id>/
        spec.yaml                  the spec as submitted (overrides applied)
        logs/attempt-<n>.log       everything an attempt printed
        logs/attempt-<n>.outcome.json   how the attempt ended (written by the runner)
        logs/supervisor.log        the supervisor's own messages
        progress.json              the latest progress the workload reported
        result.json                the job's result
        run.json                   what its backend or pipeline driver keeps besides the
                                   spec (RunDir.SECTIONS)
        report/  artifacts/
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.core.atomic import write_json_atomic

__all__ = ["Home", "RunDir", "attempt_log_path", "attempt_outcome_path", "read_outcome"]


class RunDir(type(Path())):  # a Path (PosixPath here) that knows a run directory's files
    """A job's run directory: the one place its files are named (see the module
    docstring). It is a :class:`~pathlib.Path`, so ``run_dir / "x"`` still works.

    Examples
    --------
    >>> run = RunDir("/home/runs/j-1")
    >>> run.spec, run.result, run.attempt_log(2)
    (RunDir('/home/runs/j-1/spec.yaml'), RunDir('/home/runs/j-1/result.json'), RunDir('/home/runs/j-1/logs/attempt-2.log'))

    The side file keeps one section per writer, each rewritten without the others lost:

    >>> import tempfile
    >>> run = RunDir(tempfile.mkdtemp())
    >>> run.side("ray") is None
    True
    >>> run.set_side("pipeline", {"sample": 0.1})
    >>> run.set_side("pipeline_cluster", {"address": "tcp://127.0.0.1:8786"})
    >>> run.side("pipeline"), run.side("pipeline_cluster")["address"]
    ({'sample': 0.1}, 'tcp://127.0.0.1:8786')
    >>> run.set_side("kubectl", {})
    Traceback (most recent call last):
    ...
    KeyError: "run.json has no section 'kubectl' (sections: kubernetes, ray, pipeline, pipeline_cluster, code)"
    """

    #: the names of its files (also where a copy of it lives in object storage)
    SPEC, RESULT, PROGRESS, LOGS = "spec.yaml", "result.json", "progress.json", "logs"
    #: the one side file: what the backend or pipeline driver of the run keeps besides its
    #: spec, a JSON object with one section per writer (:attr:`SECTIONS`)
    SIDE = "run.json"
    #: the sections of ``run.json``, and what each holds
    SECTIONS = {
        "kubernetes": "the profile's settings the job was submitted with (readers need "
                      "them where the profile has changed or is gone)",
        "ray": "how its attempts are submitted: {python, runtime_env}, fixed by the first",
        "pipeline": "the run's options: {cluster, sample, sample_dir, no_cache, force, "
                    "reuse, resumed_from}",
        "pipeline_cluster": "the Dask cluster the pipeline's driver started: {address}",
        "code": "the job's code package, where it runs elsewhere: {digest, zip, files, "
                "size}",
    }

    @property
    def spec(self) -> Path:
        """``spec.yaml``: the spec as submitted (overrides applied)."""
        return self / self.SPEC

    @property
    def result(self) -> Path:
        """``result.json``: the job's result."""
        return self / self.RESULT

    @property
    def progress(self) -> Path:
        """``progress.json``: the latest progress the workload reported."""
        return self / self.PROGRESS

    @property
    def logs(self) -> Path:
        return self / self.LOGS

    def side(self, section: str) -> Any:
        """Section ``section`` of ``run.json``; None where it was not written."""
        return self._side_document(section).get(section)

    def set_side(self, section: str, value: Any) -> None:
        """Write section ``section`` of ``run.json`` (the others kept), atomically.

        Each section has one writer, and a run's writers follow one another (the
        submitter, then its driver), so no two rewrite the file at once.
        """
        write_json_atomic(self / self.SIDE, {**self._side_document(section), section: value})

    def _side_document(self, section: str) -> dict[str, Any]:
        if section not in self.SECTIONS:
            raise KeyError(f"run.json has no section {section!r} "
                           f"(sections: {', '.join(self.SECTIONS)})")
        try:
            document = json.loads((self / self.SIDE).read_text())
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def attempt_log(self, attempt: int) -> Path:
        """``logs/attempt-<n>.log``: everything attempt ``n`` printed."""
        return self.logs / f"attempt-{attempt}.log"

    def attempt_outcome(self, attempt: int) -> Path:
        """``logs/attempt-<n>.outcome.json``: how attempt ``n`` ended."""
        return self.logs / f"attempt-{attempt}.outcome.json"


def attempt_log_path(run_dir: Path, attempt: int) -> Path:
    """``<run dir>/logs/attempt-<n>.log``: everything attempt ``n`` printed."""
    return RunDir(run_dir).attempt_log(attempt)


def attempt_outcome_path(run_dir: Path, attempt: int) -> Path:
    """``<run dir>/logs/attempt-<n>.outcome.json``: how attempt ``n`` ended."""
    return RunDir(run_dir).attempt_outcome(attempt)


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

    @property
    def code_cache(self) -> Path:
        """``cache/code/``: code packages by digest (:mod:`shipyard.core.code_package`)."""
        return self.root / "cache" / "code"

    def run_dir(self, job_id: str) -> RunDir:
        return RunDir(self.root / "runs" / job_id)

    def attempt_log(self, job_id: str, attempt: int) -> Path:
        return attempt_log_path(self.run_dir(job_id), attempt)
