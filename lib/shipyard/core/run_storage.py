"""Run directories kept in an object store, for jobs whose pods cannot see this machine.

A job pod (``kubernetes`` backend) runs the runner in a scratch run directory and, with
``--sync storage.json``, copies what the job layer reads back to ``<storage>/runs/<id>/``:
``result.json``, ``progress.json``, the attempt's log and outcome files, ``artifacts/``,
``report/``, and the outputs the job wrote to local paths (under ``outputs/``; a pod's
disk goes away with it). The backend downloads the same files into the local run
directory when the job ends, so ``shipyard result`` reads what a local job would.

``storage.json`` is ``{"url": "s3://bucket/prefix/runs/<id>", "options": {...}}``
(fsspec storage options), written into the job's ConfigMap by the renderer.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from shipyard.core.home import RunDir

__all__ = ["RunStorage", "SYNCED"]

log = logging.getLogger("shipyard.run_storage")

#: What is copied between a pod's run directory and the object store (files or folders).
SYNCED = (RunDir.RESULT, RunDir.PROGRESS, RunDir.LOGS, "artifacts", "report", "outputs")
_STARTED = re.compile(r"attempt-(\d+)\.started$")


class RunStorage:
    """One job's run directory in an object store.

    Parameters
    ----------
    url : str
        ``<storage url>/runs/<job id>``.
    options : dict, optional
        fsspec storage options.

    Examples
    --------
    >>> store = RunStorage("memory://doc/runs/job-1")
    >>> store.claim_attempt(), store.claim_attempt()
    (1, 2)
    """

    def __init__(self, url: str, options: dict[str, Any] | None = None,
                 code: str | None = None):
        import fsspec

        #: the job's code package in the same store (``<storage>/code/<digest>.zip``)
        self.code = code
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **(options or {}))

    @classmethod
    def from_file(cls, path: str | Path) -> RunStorage:
        """The store named by a ``storage.json`` (see the module docstring)."""
        config = json.loads(Path(path).read_text())
        return cls(config["url"], config.get("options") or {}, config.get("code"))

    def _path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def claim_attempt(self) -> int:
        """The number of the attempt starting now (one more than the attempts that
        started before it), recorded as ``logs/attempt-<n>.started``.

        Kubernetes retries a Job's pod itself; the pod learns which attempt it is from
        the object store, the one thing every attempt shares."""
        try:
            names = self.fs.ls(self._path("logs"), detail=False)
        except FileNotFoundError:
            names = []
        started = [int(m.group(1)) for n in names if (m := _STARTED.search(n))]
        attempt = max(started, default=0) + 1
        self.fs.makedirs(self._path("logs"), exist_ok=True)
        self.fs.pipe(self._path(f"logs/attempt-{attempt}.started"), b"")
        return attempt

    def put_progress(self, progress: dict[str, Any]) -> None:
        """Replace ``progress.json`` in the store (the runner's progress while it runs)."""
        self.fs.pipe(self._path(RunDir.PROGRESS), json.dumps(progress, default=str).encode())

    def upload_outputs(self, outputs: list[str]) -> dict[str, str]:
        """Copy the outputs written to local paths into ``outputs/``; return where each
        went. Object-store outputs are where the job wrote them already."""
        stored = {}
        for output in outputs:
            local = Path(output)
            if "://" in output or not local.exists():
                continue
            # where the job wrote it, relative to its working directory when inside it
            relative = (local.relative_to(Path.cwd()) if local.is_relative_to(Path.cwd())
                        else local).as_posix().lstrip("/")
            self._put(local, self._path(f"outputs/{relative}"))
            stored[output] = f"{self.url}/outputs/{relative}"
        return stored

    def upload(self, run_dir: Path) -> None:
        """Copy the run directory's results to the store (what exists of :data:`SYNCED`)."""
        for name in SYNCED:
            local = Path(run_dir) / name
            if local.exists() and name != "outputs":
                self._put(local, self._path(name))

    def _put(self, local: Path, remote: str) -> None:
        # file by file: fsspec's recursive put nests a folder that already exists remotely
        files = [local] if local.is_file() else [p for p in local.rglob("*") if p.is_file()]
        for path in files:
            target = remote if path == local else f"{remote}/{path.relative_to(local).as_posix()}"
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(path), target)

    def download(self, run_dir: Path) -> list[str]:
        """Copy the stored results into ``run_dir``; return the names found."""
        found = []
        for name in SYNCED:
            if name == "outputs":
                continue  # the job's data stays in the store; result.json says where
            remote = self._path(name)
            if not self.fs.exists(remote):
                continue
            local = Path(run_dir) / name
            if self.fs.isdir(remote):
                for path in self.fs.find(remote):
                    target = local / path[len(remote):].lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self.fs.get_file(path, str(target))
            else:
                local.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(remote, str(local))
            found.append(name)
        return found
