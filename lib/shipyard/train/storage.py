"""Where Ray Train keeps a torch job's checkpoints.

By default ``<run dir>/train``: only the node of the run directory sees it, which is
enough for a local Ray instance. A cluster of several nodes needs storage every node
reaches (Ray 2.60 refuses a path on the head when workers run elsewhere:
``train/v2/_internal/execution/storage.py``, ``_check_validation_file``), named where the
runner runs by

- ``SHIPYARD_TRAIN_STORAGE``: a URL (``s3://bucket/prefix``) or a shared mount; the
  ``ray`` backend sets it from the profile's ``train_storage``, the ``kubernetes``
  backend to ``<storage.url>/train``;
- ``SHIPYARD_TRAIN_STORAGE_OPTIONS``: fsspec storage options for that URL (JSON: an
  S3 endpoint, credentials, ...). Ray Train writes through a pyarrow filesystem; with
  options it is fsspec's, wrapped for pyarrow, so what reaches the run directories'
  storage reaches the checkpoints' too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["TRAIN_STORAGE_ENV", "TRAIN_STORAGE_OPTIONS_ENV", "train_storage"]

TRAIN_STORAGE_ENV = "SHIPYARD_TRAIN_STORAGE"
TRAIN_STORAGE_OPTIONS_ENV = "SHIPYARD_TRAIN_STORAGE_OPTIONS"


def train_storage(run_dir: Path, environ: dict[str, str] | None = None
                  ) -> tuple[str, Any | None]:
    """``(storage_path, storage_filesystem)`` for Ray Train's ``RunConfig``.

    Examples
    --------
    >>> train_storage(Path("/runs/j-1"), {})
    ('/runs/j-1/train', None)
    >>> train_storage(Path("/runs/j-1"), {"SHIPYARD_TRAIN_STORAGE": "s3://b/train/"})
    ('s3://b/train', None)
    >>> path, fs = train_storage(Path("/r"), {"SHIPYARD_TRAIN_STORAGE": "memory://b/train",
    ...     "SHIPYARD_TRAIN_STORAGE_OPTIONS": "{}"})
    >>> path, fs.type_name
    ('/b/train', 'py::fsspec+memory')
    """
    environ = os.environ if environ is None else environ
    shared = environ.get(TRAIN_STORAGE_ENV)
    if not shared:
        return str(run_dir / "train"), None
    shared = shared.rstrip("/")
    options = environ.get(TRAIN_STORAGE_OPTIONS_ENV)
    if options is None:
        return shared, None  # pyarrow resolves the URL itself (its credentials, endpoint)
    import fsspec
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, path = fsspec.core.url_to_fs(shared, **json.loads(options))
    # with a filesystem given, Ray Train wants the path inside it, without the scheme
    # (ray/train/v2/api/config.py, RunConfig)
    return path, PyFileSystem(FSSpecHandler(fs))
