"""What a pipeline costs and saves against running its stages as separate jobs.

The pipeline is a diamond of four python stages (a, b independent; c needs both; d
needs c; tests/fixtures/pipeline_steps.py), each sleeping ``--work`` seconds, so the
numbers show orchestration, not computation. Variants, interleaved, each repeated
(medians reported):

- jobs one by one: ``shipyard run`` of each stage's job spec in order (the plain way:
  a shell script of four runs);
- pipeline: ``shipyard run pipe.yaml --no-cache`` (a and b run at the same time);
- pipeline, cached: ``shipyard run pipe.yaml`` again (every stage from the cache).

With ``--quickstart``, also the wall time of each stage of jobs/quickstart.yaml (one
run with --no-cache, then one cached run).

Run: .venv/bin/python tests/bench/bench_pipeline.py [--repeats N] [--work S] [--quickstart]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from timing import SHIPYARD, run_json, run_timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def diamond(work: float) -> dict:
    def stage(name, entrypoint, needs=(), **params):
        entry = {"name": name, "output": f"out/{name}.txt",
                 "python": {"entrypoint": f"pipeline_steps:{entrypoint}",
                            "params": {"output": "${output}", **params}}}
        if needs:
            entry["needs"] = list(needs)
        return entry

    return {"apiVersion": "shipyard/v1", "kind": "Pipeline", "metadata": {"name": "bench"},
            "spec": {"stages": [
                stage("a", "write", text="A", sleep=work),
                stage("b", "write", text="B", sleep=work),
                stage("c", "concat", ["a", "b"], inputs=["${stages.a.output}",
                                                         "${stages.b.output}"]),
                stage("d", "concat", ["c"], inputs=["${stages.c.output}"]),
            ]}}


def stage_jobs(work: float, directory: Path) -> list[Path]:
    """Each stage of the diamond as a job spec of its own (references written out)."""
    from shipyard.spec.pipeline import load_pipeline

    spec = load_pipeline(diamond(work), check_references=False)
    paths = []
    for name in spec.order:
        path = directory / f"job-{name}.yaml"
        path.write_text(yaml.safe_dump(spec.stage_document(name)))
        paths.append(path)
    return paths


def quickstart(workdir: Path) -> None:
    spec = ROOT / "jobs" / "quickstart.yaml"
    for label, extra in (("first run (--no-cache)", ["--no-cache"]), ("second run", [])):
        took, status = run_json([*SHIPYARD, "run", str(spec), "--json", *extra], cwd=workdir)
        print(f"\nquickstart, {label}: {took:.1f} s end to end")
        for name, stage in status["result"]["stages"].items():
            cached = " (cached)" if stage["cached"] else ""
            print(f"  {name:<10} {stage['seconds']:7.1f} s{cached}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=float, default=2.0,
                        help="seconds each of stages a and b sleeps")
    parser.add_argument("--quickstart", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    os.environ["SHIPYARD_HOME"] = str(workdir / "home")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(FIXTURES), os.environ.get("PYTHONPATH")) if p)
    pipeline = workdir / "pipe.yaml"
    pipeline.write_text(yaml.safe_dump(diamond(args.work)))
    jobs = stage_jobs(args.work, workdir)

    times: dict[str, list[float]] = {"jobs one by one": [], "pipeline": [],
                                     "pipeline, cached": []}
    for _ in range(args.repeats):
        times["jobs one by one"].append(sum(
            run_timed([*SHIPYARD, "run", str(job)], cwd=workdir) for job in jobs))
        times["pipeline"].append(run_timed([*SHIPYARD, "run", str(pipeline), "--no-cache"],
                                           cwd=workdir))
        times["pipeline, cached"].append(run_timed([*SHIPYARD, "run", str(pipeline)],
                                                   cwd=workdir))
    base = statistics.median(times["jobs one by one"])
    print(f"diamond of 4 python stages (a, b sleep {args.work:g} s each), "
          f"medians of {args.repeats}:")
    print(f"  {'variant':<20} {'seconds':>8} {'ratio':>7}")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"  {label:<20} {median:8.2f} {median / base:6.2f}x")
    if args.quickstart:
        quickstart(workdir)
    print(json.dumps({k: statistics.median(v) for k, v in times.items()}))


if __name__ == "__main__":
    main()
