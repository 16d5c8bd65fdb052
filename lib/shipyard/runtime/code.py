"""The job's code package where an attempt runs (built at submission:
:mod:`shipyard.core.code_package`).

- :func:`install_code` makes it importable in the runner before the spec is loaded (its
  entrypoints are imported then), fetching it first where it is a URL (Kubernetes pods
  get ``<storage>/code/<digest>.zip``).
- :func:`upload_code` sends it to a Dask cluster the attempt did not start: its scheduler
  (which unpickles task graphs) and every worker, those that join later included. This
  is Dask's ``Client.upload_file`` under a name of the package's own, so running the
  same code again replaces the upload instead of adding another. As with
  ``upload_file``, each worker imports (or reloads) the package's top-level modules
  when it arrives, so a long-lived worker runs the code just submitted, not a copy it
  imported for an earlier job.

A Ray job gets the package as its ``working_dir`` from the ``ray`` backend; Ray ships it.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["install_code", "upload_code"]

log = logging.getLogger("shipyard.code")


def install_code(location: str, run_dir: Path, fs: Any = None) -> Path:
    """Put the package at ``location`` (a local zip, or a URL ``fs`` reads) first on
    ``sys.path``; return the local zip."""
    if "://" in location:
        import fsspec

        local = Path(run_dir) / "code" / location.rstrip("/").rsplit("/", 1)[-1]
        local.parent.mkdir(parents=True, exist_ok=True)
        (fs or fsspec.core.url_to_fs(location)[0]).get_file(location, str(local))
    else:
        local = Path(location)
    if not local.is_file():
        raise FileNotFoundError(f"the job's code package {location} is not there")
    sys.path.insert(0, str(local))
    importlib.invalidate_caches()
    log.info("code package %s on sys.path", local.name)
    return local


def upload_code(client: Client, package: Path) -> None:
    """Send ``package`` to the scheduler and every worker of ``client``'s cluster."""
    from distributed.diagnostics.plugin import SchedulerUploadFile, UploadFile

    name = f"shipyard-code-{package.stem[:16]}"
    client.register_plugin(SchedulerUploadFile(str(package), load=True), name=name)
    client.register_plugin(UploadFile(str(package), load=True), name=name)
    log.info("code package %s uploaded to the Dask cluster", package.name)
