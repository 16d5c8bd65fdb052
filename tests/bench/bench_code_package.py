"""What shipping a job's code costs (issue 19): building its code package, building it
again for the same code, and sending it to a Dask cluster, against zipping the same
folder with the standard library (``shutil.make_archive``) in the same run.

The folder is this repository's ``jobs/`` (the catalog: specs and their modules), as
``shipyard submit jobs/...`` to a cluster that shares no disk packages it. Targets from
the issue: build + upload under 1 s; a second submit of the same code under 50 ms with
nothing sent again (Ray names an uploaded package by its bytes, which are the same).

Run: .venv/bin/python tests/bench/bench_code_package.py [--repeats N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from timing import interleave, median, print_table  # noqa: E402

from shipyard.core.code_package import build_code_package  # noqa: E402
from shipyard.runtime.code import upload_code  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "jobs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    scratch = Path(tempfile.mkdtemp(prefix="bench-code-"))
    warm = scratch / "warm"
    package = build_code_package(FOLDER, cache_dir=warm)
    zipped = package.path.stat().st_size
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
    client = Client(cluster)

    def timed(call) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    def plain_zip() -> float:
        target = scratch / f"plain-{time.perf_counter_ns()}"
        return timed(lambda: shutil.make_archive(str(target), "zip", FOLDER))

    def first_build() -> float:
        cold = scratch / f"cold-{time.perf_counter_ns()}"
        return timed(lambda: build_code_package(FOLDER, cache_dir=cold))

    def second_build() -> float:
        return timed(lambda: build_code_package(FOLDER, cache_dir=warm))

    def dask_upload() -> float:
        return timed(lambda: upload_code(client, package.path))

    try:
        samples = interleave({"zip with shutil.make_archive": plain_zip,
                              "first build (empty cache)": first_build,
                              "second build (same code, cached)": second_build,
                              "upload to a Dask cluster (2 workers)": dask_upload},
                             args.repeats)
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"jobs/: {len(package.names)} files, {package.size / 1024:.0f} KiB, "
          f"zip {zipped / 1024:.0f} KiB; "
          f"{args.repeats} rounds, medians")
    notes = {"first build (empty cache)": "walk, hash, write the zip",
             "second build (same code, cached)": "walk and hash only: the zip is there",
             "upload to a Dask cluster (2 workers)": "scheduler + each worker, imports the "
                                                     "package's modules"}
    print_table("code package", [(name, median(values), notes.get(name, "the plain alternative"))
                                 for name, values in samples.items()],
                baseline="zip with shutil.make_archive")


if __name__ == "__main__":
    main()
