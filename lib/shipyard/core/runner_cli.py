"""The runner's command line, in one place: what every backend starts
(:func:`runner_command`) and what ``python -m shipyard.runtime.runner`` parses
(:func:`runner_parser`).

The local supervisor, the ``ray`` backend's Ray job entrypoint and the Kubernetes pods
all run the same module with options from :data:`RUNNER_OPTIONS`; an option a backend
names that the runner does not know is refused here, not in a pod.

Examples
--------
>>> runner_command("python", run_dir="/work/run", job_id="j-1", attempt=2,
...                dask_address="tcp://s:8786")
['python', '-m', 'shipyard.runtime.runner', '--run-dir', '/work/run', '--job-id', 'j-1', '--attempt', '2', '--dask-address', 'tcp://s:8786']
>>> runner_parser().parse_args(["--run-dir", "r", "--job-id", "j"]).attempt
'1'
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["RUNNER_MODULE", "RUNNER_OPTIONS", "runner_command", "runner_parser"]

RUNNER_MODULE = "shipyard.runtime.runner"

#: option -> its argparse keywords (help included); the keys are the keyword names
#: of runner_command.
RUNNER_OPTIONS: dict[str, dict[str, Any]] = {
    "run_dir": {"required": True, "type": Path},
    "job_id": {"required": True},
    "attempt": {"default": "1",
                "help": "the attempt number, or auto: count the attempts recorded in the "
                        "--sync store (Kubernetes retries a Job's pod itself)"},
    "dask_address": {"default": None, "help": "use this Dask scheduler"},
    "dask_connect_timeout": {"default": None, "type": float, "metavar": "SECONDS",
                             "help": "how long to wait for that scheduler to answer (a "
                                     "DaskJob's runner pod starts before its scheduler)"},
    "workdir": {"default": None, "type": Path,
                "help": "run in this directory (where relative paths of the spec resolve); "
                        "a Ray job's entrypoint cannot `cd` (see shipyard.backends.kubernetes.render)"},
    "ray_address": {"default": None,
                    "help": "use this Ray cluster (auto: the one this runs in)"},
    "spec_from_env": {"default": None, "metavar": "VARIABLE",
                      "help": "the spec as base64 YAML in this environment variable, used "
                              "where the run directory has none"},
    "spec_file": {"default": None, "type": Path,
                  "help": "copy this spec (a mounted ConfigMap) into the run directory"},
    "code": {"default": None, "metavar": "ZIP_OR_URL",
             "help": "the job's code package: put first on sys.path, and uploaded to a "
                     "Dask cluster the attempt did not start (see shipyard.runtime.code)"},
    "sync": {"default": None, "type": Path, "metavar": "STORAGE_JSON",
             "help": "keep the run directory's results in the object store this file "
                     "names (see shipyard.core.run_storage)"},
    "store": {"default": None, "help": "job store database for progress"},
    "watch_parent": {"type": int, "default": None,
                     "help": "end the attempt if this parent process goes away"},
}


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def runner_command(python: str, *, run_dir: str | Path, job_id: str,
                   attempt: int | str = 1, **options: Any) -> list[str]:
    """``python -m shipyard.runtime.runner`` with these options (None ones left out).

    Raises
    ------
    TypeError
        For an option the runner does not take.
    """
    unknown = set(options) - set(RUNNER_OPTIONS)
    if unknown:
        raise TypeError(f"the runner takes no option {sorted(unknown)}")
    command = [python, "-m", RUNNER_MODULE, "--run-dir", str(run_dir), "--job-id", job_id,
               "--attempt", str(attempt)]
    for option, value in options.items():
        if value is not None:
            command += [_flag(option), str(value)]
    return command


def runner_parser() -> argparse.ArgumentParser:
    """The runner's argument parser (:data:`RUNNER_OPTIONS`)."""
    parser = argparse.ArgumentParser(prog=f"python -m {RUNNER_MODULE}",
                                     description="Run one attempt of a shipyard job.")
    for option, keywords in RUNNER_OPTIONS.items():
        parser.add_argument(_flag(option), **keywords)
    return parser
