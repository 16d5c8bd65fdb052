"""Write a job's output atomically: readers see the old output or the whole new one.

The output is written under a hidden staging name beside the target
(``.<name>.shipyard-<job>-<attempt>``), and only when every partition is written is it
committed:

- on a local (POSIX) filesystem, by renames: the old target is moved aside, the staging
  directory or file renamed into place, the old one removed. A failed job leaves the
  previous output untouched and removes its staging files.
- on an object store (S3 and the like), renames do not exist: a single-file output is
  one object PUT, which is atomic; a directory is copied object by object and a
  ``_SUCCESS`` marker written last, which readers of a partitioned dataset should check.

A target that exists is refused unless ``overwrite: true``.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask.dataframe as dd

from shipyard.core.errors import InputDataError
from shipyard.data.files import filesystem
from shipyard.data.spec import OutputSpec

__all__ = ["StagedOutput", "stage_output"]

log = logging.getLogger("shipyard.data")


def _is_local(fs) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return "file" in protocols


@dataclass
class StagedOutput:
    """A lazy write to a staging location, and how to commit or abandon it."""

    write: Any                      # the Dask collection / delayed to compute
    commit: Callable[[], None]
    abort: Callable[[], None]
    path: str


def _url(fs, path: str) -> str:
    return path if _is_local(fs) else fs.unstrip_protocol(path)


def stage_output(frame: dd.DataFrame, output: OutputSpec, tag: str) -> StagedOutput:
    """Prepare writing ``frame`` to ``output`` through a staging location named by ``tag``.

    Raises
    ------
    InputDataError
        When the target exists and ``overwrite`` is not set.
    """
    fs, target = filesystem(output.path, output.storage_options)
    target = target.rstrip("/")
    if fs.exists(target) and not output.overwrite:
        raise InputDataError(f"{output.path} already exists; set output.overwrite: true to "
                             "replace it")
    parent, name = posixpath.split(target)
    staging = posixpath.join(parent, f".{name}.shipyard-{tag}")
    if fs.exists(staging):
        fs.rm(staging, recursive=True)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    options = output.storage_options or None
    if output.resolved_format == "parquet":
        write = frame.to_parquet(_url(fs, staging), partition_on=output.partition_on,
                                 compression=output.compression or "snappy",
                                 write_index=False, storage_options=options, compute=False)
    elif output.is_single_file:
        write = frame.to_csv(_url(fs, staging), single_file=True, index=False,
                             compression=output.compression, storage_options=options,
                             compute=False)
    else:
        fs.makedirs(staging, exist_ok=True)
        write = frame.to_csv(_url(fs, posixpath.join(staging, "part-*.csv")), index=False,
                             compression=output.compression, storage_options=options,
                             compute=False)

    def abort() -> None:
        try:
            if fs.exists(staging):
                fs.rm(staging, recursive=True)
        except OSError as err:
            log.warning("could not remove staging output %s: %s", staging, err)

    def commit() -> None:
        if fs.exists(target) and not output.overwrite:  # appeared while the job ran
            abort()
            raise InputDataError(f"{output.path} was created while the job ran; set "
                                 "output.overwrite: true to replace it")
        if _is_local(fs):
            _commit_by_rename(fs, staging, target)
        else:
            _commit_by_copy(fs, staging, target)
        log.info("output committed to %s", output.path)

    return StagedOutput(write=write, commit=commit, abort=abort, path=output.path)


def _commit_by_rename(fs, staging: str, target: str) -> None:
    if fs.isfile(staging) and not fs.isdir(target):
        os.replace(staging, target)  # one atomic rename, even over an existing file
        return
    # a directory cannot be swapped in one step: the old one is moved aside first, so a
    # reader finds the old output, no output for an instant, or the new one - never half
    old = f"{staging}.old"
    if fs.exists(target):
        fs.mv(target, old, recursive=True)
    fs.mv(staging, target, recursive=True)
    if fs.exists(old):
        fs.rm(old, recursive=True)


def _commit_by_copy(fs, staging: str, target: str) -> None:
    if fs.isdir(staging):
        if fs.exists(target):
            fs.rm(target, recursive=True)
        fs.copy(staging, target, recursive=True)
        fs.pipe(posixpath.join(target, "_SUCCESS"), b"")
        fs.rm(staging, recursive=True)
    else:
        fs.mv(staging, target)
