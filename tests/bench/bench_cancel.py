"""How long `shipyard cancel` takes to end a running job, against ending a plain script.

The test suite checks what a cancel ends and in which order; how fast it does is a
figure, measured here (README promises "within seconds"; the target is 5 s).

Variants, interleaved and repeated (medians):

- plain script: a Python process running a Dask LocalCluster (2 worker processes) is
  sent SIGTERM (its process group, as a terminal's Ctrl-C reaches it); the time until
  every process of its tree has ended;
- shipyard cancel: the same work as a `python` job on the local backend (its supervisor,
  runner and LocalCluster); the time from invoking `shipyard cancel ID` until every
  process of the job's tree (supervisor included) has ended, and until the CLI returned.

Run: .venv/bin/python tests/bench/bench_cancel.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from timing import SHIPYARD, interleave, median, print_table  # noqa: E402

TARGET_SECONDS = 5.0

FUNCTIONS = textwrap.dedent('''
    import time

    def hold(ctx):
        ctx.client.submit(lambda: 1).result()   # the cluster is up
        ctx.progress("holding")
        time.sleep(600)
''')

PLAIN_SCRIPT = textwrap.dedent('''
    import sys, time
    from distributed import Client, LocalCluster

    if __name__ == "__main__":
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            client.submit(lambda: 1).result()
            print("holding", flush=True)
            time.sleep(600)
''')


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _until_gone(processes: list[psutil.Process]) -> None:
    psutil.wait_procs(processes, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-cancel-"))
    (work / "benchfuncs.py").write_text(FUNCTIONS)
    (work / "plain.py").write_text(PLAIN_SCRIPT)
    (work / "hold.yaml").write_text(yaml.safe_dump({
        "apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "bench-cancel"},
        "spec": {"resources": {"workers": 2, "threads_per_worker": 1},
                 "python": {"entrypoint": "benchfuncs:hold"}}}))
    env = dict(os.environ, SHIPYARD_HOME=str(work / "home"), PYTHONPATH=str(work))
    cli_returned: list[float] = []

    def plain() -> float:
        proc = subprocess.Popen([sys.executable, str(work / "plain.py")], cwd=work,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert proc.stdout.readline().strip() == "holding"
        processes = _tree(proc.pid)
        start = time.perf_counter()
        os.killpg(proc.pid, signal.SIGTERM)
        _until_gone(processes)
        took = time.perf_counter() - start
        proc.wait()
        return took

    def cancel() -> float:
        from shipyard.jobs.api import get_job

        job_id = subprocess.run([*SHIPYARD, "submit", str(work / "hold.yaml")], cwd=work,
                                env=env, capture_output=True, text=True,
                                check=True).stdout.strip()
        job = get_job(job_id, home=work / "home")
        while (job.status().progress or {}).get("phase") != "holding":
            time.sleep(0.05)
        record = job.status()
        processes = [psutil.Process(record.supervisor_pid), *_tree(record.runner_pid)]
        start = time.perf_counter()
        subprocess.run([*SHIPYARD, "cancel", job_id], env=env, capture_output=True,
                       check=True)
        cli_returned.append(time.perf_counter() - start)
        _until_gone(processes)
        return time.perf_counter() - start

    samples = interleave({"plain": plain, "cancel": cancel}, args.repeats)
    took = median(samples["cancel"])
    verdict = "meets" if took < TARGET_SECONDS else "MISSES"
    print_table(
        f"cancel a running job with a 2-worker LocalCluster, {args.repeats} interleaved "
        "runs each, medians",
        [("plain script, SIGTERM to its group", median(samples["plain"]), "baseline"),
         ("shipyard cancel -> tree gone", took,
          f"{verdict} the < {TARGET_SECONDS:g} s target"),
         ("shipyard cancel -> CLI returned", median(cli_returned), "")],
        baseline="plain script, SIGTERM to its group",
    )


if __name__ == "__main__":
    main()
