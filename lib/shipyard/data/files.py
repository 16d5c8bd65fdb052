"""Finding input files: a path, a directory or a glob, on any fsspec filesystem."""

from __future__ import annotations

from typing import Any

import fsspec

from shipyard.core.errors import InputDataError, InputUnreachableError

__all__ = ["expand", "filesystem"]

_SKIPPED = ("_SUCCESS", "_metadata", "_common_metadata")


def filesystem(path: str, storage_options: dict[str, Any] | None = None):
    """The fsspec filesystem of ``path`` and the path as that filesystem names it."""
    return fsspec.core.url_to_fs(path, **(storage_options or {}))


def _full(fs, path: str) -> str:
    """Local paths stay plain; others get their protocol back (``s3://bucket/key``)."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return path if "file" in protocols else fs.unstrip_protocol(path)


def expand(path: str, storage_options: dict[str, Any] | None = None,
           suffixes: tuple[str, ...] = ()) -> list[str]:
    """The data files ``path`` names, as full URLs, sorted.

    A glob gives its matches; a directory gives the files below it (hidden files and
    ``_SUCCESS``/``_metadata`` markers skipped; with ``suffixes``, only those endings).

    Raises
    ------
    InputDataError
        Naming the path when nothing matches or it cannot be reached.
    """
    try:
        fs, root = filesystem(path, storage_options)
        if any(ch in root for ch in "*?["):
            found = sorted(fs.glob(root))
        elif fs.isdir(root):
            found = sorted(p for p in fs.find(root)
                           if not any(part.startswith((".", "_")) for part in
                                      p[len(root.rstrip("/")) + 1:].split("/")))
            if suffixes:
                found = [p for p in found if p.endswith(suffixes)] or found
        elif fs.exists(root):
            found = [root]
        else:
            found = []
    except Exception as err:  # an unreachable bucket, bad or missing credentials (each
        # filesystem has errors of its own: botocore's NoCredentialsError is no OSError)
        raise InputUnreachableError(
            f"{path}: cannot be read ({type(err).__name__}: {err})") from None
    found = [p for p in found if p.rsplit("/", 1)[-1] not in _SKIPPED]
    if not found:
        raise InputDataError(f"{path}: no such file, directory or matching files")
    return [_full(fs, p) for p in found]
