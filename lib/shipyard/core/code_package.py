"""A job's code package: the files its own code needs where it runs, zipped once per
content (Ray's ``working_dir``, Metaflow's and Flyte's code packages).

A cluster that shares no disk with the submitter cannot import a module that sits next to
the spec. So the spec's directory (where entrypoints and train loops are found), plus the
spec's ``code.paths``, less ``code.exclude`` and :data:`DEFAULT_EXCLUDES`, is zipped with
every file at the top of the archive, as it lies in its folder (``churn_data.py`` next to
the spec is ``churn_data`` on ``sys.path``; a folder named in ``paths`` keeps its name).

- The digest covers each file's name in the package and its bytes, nothing else, so the
  same code gives the same digest on any machine and at any time; the zip is written
  with fixed timestamps and order, so its bytes are the same too (Ray names an uploaded
  package by its bytes' hash: same code, no second upload).
- Packages are kept in ``$SHIPYARD_HOME/cache/code/<digest>.zip``; a second build of the
  same code finds it there.
- Data files are left out by default (:data:`DEFAULT_EXCLUDES`): data goes to object
  storage, not with the code. A package over :data:`MAX_BYTES` (unzipped) is refused,
  naming its biggest files.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "steps.py").write_text("def run(): return 1\\n")
>>> _ = (folder / "big.parquet").write_bytes(b"data")
>>> package = build_code_package(folder, cache_dir=pathlib.Path(tempfile.mkdtemp()))
>>> package.names
('steps.py',)
>>> build_code_package(folder, cache_dir=package.path.parent).digest == package.digest
True
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shipyard.core.errors import SpecError

__all__ = ["CodePackage", "build_code_package", "code_digest", "DEFAULT_EXCLUDES", "MAX_BYTES"]

#: The largest package (sum of the files' sizes before compression): Ray's own limit
#: for a working_dir is 500 MiB, and shipping data with code is the usual cause.
MAX_BYTES = 100 * 2**20

#: Left out of every package: version control, environments, caches, and data files
#: (a pattern without ``/`` matches a file or folder name anywhere; with ``/``, the path
#: in the package).
DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", "node_modules", "__pycache__",
    "*.pyc", "*.pyo", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    "*.egg-info", ".DS_Store", ".shipyard",
    "*.parquet", "*.csv", "*.tsv", "*.jsonl", "*.ndjson", "*.feather", "*.arrow", "*.orc",
    "*.avro", "*.xlsx", "*.xls", "*.npy", "*.npz", "*.h5", "*.hdf5", "*.pt", "*.pth",
    "*.ckpt", "*.safetensors", "*.pkl", "*.pickle", "*.joblib", "*.db", "*.sqlite",
    "*.zip", "*.gz", "*.bz2", "*.xz", "*.zst", "*.tar",
)

#: The time every entry of the zip carries (the earliest a zip can say): bytes that
#: depend on the content only.
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class CodePackage:
    """A built package.

    Attributes
    ----------
    digest : str
        SHA-256 of the names and bytes of its files (hex).
    path : Path
        The zip, in the cache.
    names : tuple of str
        The files in it (POSIX paths, sorted).
    size : int
        Their bytes before compression.
    """

    digest: str
    path: Path
    names: tuple[str, ...]
    size: int


def _excluded(name: PurePosixPath, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if "/" in pattern.strip("/"):
            if fnmatch.fnmatchcase(name.as_posix(), pattern.strip("/")):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern.strip("/")) for part in name.parts):
            return True
    return False


def _files(root: Path, prefix: PurePosixPath, patterns: tuple[str, ...],
           skipped: set[Path]) -> list[tuple[str, Path]]:
    """``(name in the package, file)`` for every file under ``root`` not excluded."""
    if root.is_file():
        return [] if _excluded(prefix, patterns) else [(prefix.as_posix(), root)]
    found = []
    for folder, dirs, files in os.walk(root):
        here = prefix / Path(folder).relative_to(root).as_posix()
        # pruned here, so an excluded .venv is never walked
        dirs[:] = sorted(d for d in dirs if not _excluded(here / d, patterns)
                         and (Path(folder) / d).resolve() not in skipped)
        for file in sorted(files):
            name = here / file
            path = Path(folder) / file
            if not _excluded(name, patterns) and path.is_file():
                found.append((PurePosixPath(os.path.normpath(name)).as_posix(), path))
    return found


def build_code_package(spec_dir: str | os.PathLike | None, paths: Iterable[str] = (),
                       exclude: Iterable[str] = (), *, cache_dir: Path,
                       skip: Iterable[Path] = ()) -> CodePackage:
    """Zip the spec's code (see the module docstring) into ``cache_dir``, once per content.

    Parameters
    ----------
    spec_dir : path or None
        The spec's directory: its files are the top of the package. None for a spec
        that has no file (a dict given to the API): only ``paths`` then, relative to the
        current directory.
    paths : iterable of str
        More files or folders (relative to ``spec_dir``), each put at the top under its
        own name.
    exclude : iterable of str
        Patterns to leave out, besides :data:`DEFAULT_EXCLUDES`.
    cache_dir : Path
        Where packages are kept, by digest.
    skip : iterable of Path
        Folders never packaged (``$SHIPYARD_HOME``, where it lies below the spec).

    Raises
    ------
    SpecError
        A path that does not exist, two files with one name in the package, or a
        package over :data:`MAX_BYTES`.
    """
    by_name = _package_files(spec_dir, paths, exclude, skip)
    sizes = {name: path.stat().st_size for name, path in by_name.items()}
    total = sum(sizes.values())
    if total > MAX_BYTES:
        biggest = sorted(sizes, key=sizes.get, reverse=True)[:5]
        listed = ", ".join(f"{name} ({sizes[name] / 2**20:.1f} MiB)" for name in biggest)
        raise SpecError(
            f"the job's code package ({spec_dir} and spec.code.paths) would be "
            f"{total / 2**20:.0f} MiB, over the {MAX_BYTES // 2**20} MiB limit; the biggest "
            f"files: {listed}. Leave them out with spec.code.exclude, or keep data in "
            "object storage and read it from there")
    digest = _digest(by_name)
    package = Path(cache_dir) / f"{digest}.zip"
    if not package.is_file():
        _write_zip(package, by_name)
    return CodePackage(digest, package, tuple(sorted(by_name)), total)


def code_digest(spec_dir: str | os.PathLike | None, paths: Iterable[str] = (),
                exclude: Iterable[str] = (), skip: Iterable[Path] = (),
                only: Iterable[str] = ()) -> str:
    """The digest :func:`build_code_package` would give, without writing a zip; with
    ``only`` (name patterns), the digest of just those of its files (a pipeline stage's
    cache key holds the digest of its Python sources: what a stage writes next to its
    spec is not code)."""
    files = _package_files(spec_dir, paths, exclude, skip)
    patterns = tuple(only)
    if patterns:
        files = {name: path for name, path in files.items()
                 if any(fnmatch.fnmatchcase(PurePosixPath(name).name, p) for p in patterns)}
    return _digest(files)


def _package_files(spec_dir: str | os.PathLike | None, paths: Iterable[str],
                   exclude: Iterable[str], skip: Iterable[Path]) -> dict[str, Path]:
    """``{name in the package: file}``."""
    skipped = {Path(s).resolve() for s in skip}
    patterns = (*DEFAULT_EXCLUDES, *exclude)
    packaged = None if spec_dir is None else Path(spec_dir).resolve()
    files = [] if packaged is None else _files(packaged, PurePosixPath("."), patterns, skipped)
    base = packaged or Path.cwd().resolve()
    for extra in paths:
        root = (base / extra).resolve()
        if not root.exists():
            raise SpecError(f"spec.code.paths: {extra!r} does not exist (relative to "
                            f"{base}); name files or folders the job's code needs")
        if packaged is not None and (root == packaged or packaged in root.parents):
            continue  # already in the package with the spec's directory
        files += _files(root, PurePosixPath(root.name), patterns, skipped)
    by_name: dict[str, Path] = {}
    for name, path in files:
        if name in by_name and by_name[name] != path:
            raise SpecError(f"spec.code.paths: {by_name[name]} and {path} would both be "
                            f"{name!r} in the job's code package; rename one or leave one out")
        by_name[name] = path
    return by_name


def _digest(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0")
        digest.update(files[name].read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _write_zip(target: Path, files: dict[str, Path]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                entry = zipfile.ZipInfo(name, date_time=_EPOCH)
                executable = os.access(files[name], os.X_OK)
                entry.external_attr = (0o755 if executable else 0o644) << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, files[name].read_bytes())
        os.replace(tmp, target)  # whole or not at all: a reader never sees half a package
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
