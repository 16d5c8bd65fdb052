"""What `shipyard run` costs on top of doing the same work in a plain script.

Variants, interleaved, each repeated (medians reported):

- plain script: start a Dask LocalCluster (2 workers), run one trivial task, close it;
- shipyard run: the same function as a `python` job (its LocalCluster started by the
  runner, sized by spec.resources), through the real CLI;
- shipyard run, no cluster: a job that never touches ctx.client (pure framework cost);
- submit -> RUNNING: from invoking `shipyard submit` to the job's RUNNING timestamp.

Target (issue 2): overhead under 1.5 s beyond the cluster start, i.e.
`shipyard run` minus the plain script stays below 1.5 s.

Run: .venv/bin/python tests/bench/bench_job_overhead.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from timing import SHIPYARD, interleave, median, print_table, run_timed  # noqa: E402

FUNCTIONS = textwrap.dedent('''
    def touch_cluster(ctx):
        return ctx.client.submit(lambda: 1).result()

    def noop(ctx):
        return None
''')

PLAIN_SCRIPT = textwrap.dedent('''
    from distributed import Client, LocalCluster

    if __name__ == "__main__":
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            assert client.submit(lambda: 1).result() == 1
''')


def spec(entrypoint: str) -> dict:
    return {"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "bench"},
            "spec": {"resources": {"workers": 2, "threads_per_worker": 1},
                     "python": {"entrypoint": entrypoint}}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    (work / "benchfuncs.py").write_text(FUNCTIONS)
    (work / "plain.py").write_text(PLAIN_SCRIPT)
    for name, entrypoint in (("cluster", "benchfuncs:touch_cluster"), ("noop", "benchfuncs:noop")):
        (work / f"{name}.yaml").write_text(yaml.safe_dump(spec(entrypoint)))
    env = dict(os.environ, SHIPYARD_HOME=str(work / "home"))

    def submit_to_running() -> float:
        from shipyard.jobs.api import get_job

        start = time.time()
        job_id = subprocess.run([*SHIPYARD, "submit", str(work / "noop.yaml")], env=env,
                                capture_output=True, text=True, check=True).stdout.strip()
        job = get_job(job_id, home=work / "home")
        while job.status().started_at is None:
            time.sleep(0.005)
        latency = job.status().started_at - start
        job.wait()
        return latency

    samples = interleave({
        "plain script + LocalCluster": lambda: run_timed([sys.executable, str(work / "plain.py")],
                                                         cwd=work),
        "shipyard run (uses cluster)": lambda: run_timed(
            [*SHIPYARD, "run", str(work / "cluster.yaml")], cwd=work, env=env),
        "shipyard run (no cluster)": lambda: run_timed(
            [*SHIPYARD, "run", str(work / "noop.yaml")], cwd=work, env=env),
        "submit -> RUNNING": submit_to_running,
    }, args.repeats)

    base = median(samples["plain script + LocalCluster"])
    job = median(samples["shipyard run (uses cluster)"])
    overhead = job - base
    verdict = "meets" if overhead < 1.5 else "MISSES"
    print_table(
        f"job overhead, {args.repeats} interleaved runs each, medians",
        [("plain script + LocalCluster", base, "baseline"),
         ("shipyard run (uses cluster)", job,
          f"overhead {overhead:+.2f} s: {verdict} the < 1.5 s target"),
         ("shipyard run (no cluster)", median(samples["shipyard run (no cluster)"]),
          "framework alone: CLI, supervisor, runner"),
         ("submit -> RUNNING", median(samples["submit -> RUNNING"]), "latency")],
        baseline="plain script + LocalCluster",
    )


if __name__ == "__main__":
    main()
