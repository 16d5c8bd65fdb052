"""Stage caching: a key per stage run, and the cache of finished stages.

A stage's key is the SHA-256 of

- its workload block as it will run (references resolved, ``sample`` included),
- its inputs: for each file, its size and its ETag (object stores) or modification
  time (files); files up to :data:`SMALL_FILE` bytes by their content instead, so
  rewriting one with the same bytes does not count as a change,
- the code: shipyard's own source, and the Python sources of the stage's code package
  (the spec's directory and ``code.paths``, as :mod:`shipyard.core.code_package` ships
  it to a cluster), plus the source file of a ``python`` entrypoint or ``torch`` train
  loop that lies outside the package.

``$SHIPYARD_HOME/cache/stages/<key>.json`` records the stage job that produced the
result and fingerprints of what it wrote. A later run with the same key reuses that
job's result when its run directory still holds ``result.json`` and its outputs are
still as they were written; otherwise the stage runs again.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shipyard
from shipyard.core.atomic import write_json_atomic
from shipyard.core.code_package import code_digest as package_digest
from shipyard.core.home import Home
from shipyard.core.workloads import data_fields, workload
from shipyard.data.files import filesystem

if TYPE_CHECKING:
    from shipyard.spec import JobSpec

__all__ = ["SMALL_FILE", "fingerprint", "stage_key", "StageCache", "code_digest"]

#: Files up to this size are fingerprinted by their content.
SMALL_FILE = 1 * 2**20

_GLOB_CHARS = set("*?[")


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(path: str, storage_options: dict[str, Any] | None = None) -> list[dict]:
    """What identifies the current content of ``path`` (a file, a directory or a glob):
    one entry per file, sorted; ``[{"path", "missing": True}]`` when nothing is there."""
    try:
        fs, root = filesystem(path, storage_options)
        if _GLOB_CHARS & set(root):
            files = sorted(fs.glob(root))
        elif fs.isdir(root):
            files = sorted(fs.find(root))
        elif fs.exists(root):
            files = [root]
        else:
            files = []
        entries = []
        for name in files:
            info = fs.info(name)
            entry: dict[str, Any] = {"path": name, "size": info.get("size")}
            if info.get("size") is not None and info["size"] <= SMALL_FILE:
                entry["sha256"] = hashlib.sha256(fs.cat_file(name)).hexdigest()
            else:
                version = next((info[k] for k in ("ETag", "etag", "md5Hash", "generation")
                                if info.get(k)), None)
                entry["version"] = str(version if version is not None else
                                       info.get("mtime") or info.get("LastModified")
                                       or info.get("created"))
            entries.append(entry)
    except (OSError, ValueError) as err:
        return [{"path": path, "error": type(err).__name__}]
    return entries or [{"path": path, "missing": True}]


def _inputs(spec: JobSpec, own_output: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The ``(path, storage_options)`` a stage reads."""
    name = spec.workload_name
    if workload(name).declares_inputs:
        return [(found.path, found.storage_options)
                for found in data_fields(name, spec.to_dict()["spec"][name]) if not found.output]
    # the block does not say what it reads (a python stage's parameters): the parameters
    # (at any depth) that name existing paths, other than its own output and what lies
    # in it, are what it reads
    from shipyard.spec.pipeline import strings

    own = None if own_output is None else Path(own_output).resolve()
    paths = []
    for value in strings(spec.workload.params):
        if not (isinstance(value, str) and value and "://" not in value
                and Path(value).exists()):
            continue
        if own is not None and Path(value).resolve().is_relative_to(own):
            continue  # written by the stage itself: not what it read
        paths.append((value, {}))
    return paths


@functools.cache
def _package_digest() -> str:
    root = Path(shipyard.__file__).parent
    digest = hashlib.sha256(shipyard.__version__.encode())
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".json", ".yaml") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def code_digest(spec: JobSpec) -> dict[str, str]:
    """The code a stage runs: shipyard's source, the stage's code package (the spec's
    directory and ``code.paths``: what a cluster that shares no disk gets), and its
    entrypoint's source file where that lies outside the package."""
    from shipyard.spec.entrypoints import resolve_callable

    spec_dir = Path(spec.base_dir or Path.cwd()).resolve()
    # the package's Python sources: what stages write next to the spec is data, and a
    # stage is keyed by its own block, not by the YAML it sits in
    code = {"shipyard": _package_digest(),
            "package": package_digest(spec.base_dir, spec.spec.code.paths,
                                      spec.spec.code.exclude, skip=[Home.from_env().root],
                                      only=["*.py"])}
    field = workload(spec.workload_name).code
    if field is not None:
        entrypoint = getattr(spec.workload, field)
        search = [p for p in (spec.base_dir, str(Path.cwd())) if p]
        try:
            source = Path(inspect.getsourcefile(resolve_callable(entrypoint, search))).resolve()
        except (TypeError, OSError):
            return code  # a builtin or C function: its version is the package's
        if spec_dir not in source.parents:
            code[entrypoint] = hashlib.sha256(source.read_bytes()).hexdigest()
    return code


def stage_key(spec: JobSpec, own_output: str | None) -> str:
    """The cache key of a stage's job spec (see the module docstring)."""
    document = spec.to_dict()["spec"]
    material = {
        "workload": spec.workload_name,
        "block": document[spec.workload_name],
        "sample": document.get("sample"),
        "inputs": [fingerprint(path, options) for path, options in _inputs(spec, own_output)],
        "code": code_digest(spec),
    }
    return _digest(material)


class StageCache:
    """``$SHIPYARD_HOME/cache/stages``: finished stages by key.

    Parameters
    ----------
    root : Path
        The cache directory.
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str, run_dir_of) -> dict[str, Any] | None:
        """The entry of ``key`` if its result can still be used, else None.

        ``run_dir_of(job_id)`` gives the run directory where the entry's result lies.
        """
        try:
            entry = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        if not run_dir_of(entry["job_id"]).result.is_file():
            return None
        for path, recorded in entry.get("outputs", {}).items():
            if fingerprint(path) != recorded:
                return None
        return entry

    def put(self, key: str, *, job_id: str, pipeline: str, stage: str,
            outputs: list[str]) -> None:
        """Record that ``job_id`` produced the result of ``key``, with what it wrote."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._path(key), {
            "key": key, "job_id": job_id, "pipeline": pipeline, "stage": stage,
            "created_at": time.time(),
            "outputs": {path: fingerprint(path) for path in dict.fromkeys(outputs)},
        })
