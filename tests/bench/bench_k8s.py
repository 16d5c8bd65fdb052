"""The `kubernetes` backend's cost in API traffic and time, against the plain client.

No cluster runs here: the API is kmock's emulator over real HTTP (tests/k8s_emulator.py),
run directories in a moto S3 server, so the numbers are the client side's (request
count, serialisation, our bookkeeping), not a real API server's latency.

Variants, interleaved and repeated (medians):

- submit: `shipyard.submit(spec, cluster="kubernetes")` (validate, job store, render,
  create the Job and its ConfigMap) against the plain `kubernetes` client creating the
  same two rendered manifests;
- status: one `Job.status()` read (the Job, its pods, the progress file) against one
  plain `read_namespaced_job`;
- wait: the requests `Job.wait()` makes while a job runs for 30 s (a watch, renewed every
  10 s) against a loop reading the Job every second, and how late each notices the end.

Run: .venv/bin/python tests/bench/bench_k8s.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from timing import interleave, median, print_table  # noqa: E402

from k8s_emulator import Emulator  # noqa: E402

NS = "shipyard"
ROOT = Path(__file__).resolve().parents[2]
RUN_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # the wait variants use the third submitted job: at least 3
    parser.add_argument("--repeats", type=lambda v: max(3, int(v)), default=15)
    args = parser.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log

    import shipyard
    from shipyard.backends.kubernetes.render import render, resource_name
    from shipyard.backends.kubernetes.settings import kubernetes_settings
    from shipyard.spec import load

    workdir = Path(tempfile.mkdtemp(prefix="bench-k8s-"))
    os.environ.update(SHIPYARD_HOME=str(workdir / "home"), AWS_ACCESS_KEY_ID="x",
                      AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    s3_url = f"http://127.0.0.1:{s3._server.server_port}"
    import s3fs

    s3fs.S3FileSystem(endpoint_url=s3_url).mkdir("runs")
    emulator = Emulator()
    kubeconfig = emulator.kubeconfig(workdir / "kubeconfig", NS)
    profile = {"backend": "kubernetes", "kubeconfig": str(kubeconfig), "namespace": NS,
               "image": "shipyard:bench",
               "storage": {"url": "s3://runs/bench", "options": {"endpoint_url": s3_url}}}
    (workdir / "home" / "clusters").mkdir(parents=True)
    (workdir / "home" / "clusters" / "kubernetes.yaml").write_text(yaml.safe_dump(profile))
    spec_path = ROOT / "jobs" / "basics.yaml"
    os.chdir(ROOT)

    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    settings = kubernetes_settings("kubernetes", {k: v for k, v in profile.items()
                                                  if k != "backend"})
    spec = load(spec_path)
    jobs: list[shipyard.Job] = []

    def shipyard_submit() -> float:
        start = time.perf_counter()
        jobs.append(shipyard.submit(spec, cluster="kubernetes"))
        return time.perf_counter() - start

    def plain_submit() -> float:
        job_id = f"basics-plain-{uuid.uuid4().hex[:8]}"
        config_map, job = render(spec, settings, job_id)
        start = time.perf_counter()
        batch.create_namespaced_job(NS, job)
        core.create_namespaced_config_map(NS, config_map)
        return time.perf_counter() - start

    submits = interleave({"shipyard submit": shipyard_submit, "plain client": plain_submit},
                         args.repeats)
    print_table("submit (validated spec -> Job + ConfigMap created)", [
        ("plain client", median(submits["plain client"]), "create 2 objects"),
        ("shipyard submit", median(submits["shipyard submit"]),
         "+ version check, job store, run dir")], "plain client")

    probe = jobs[0]
    name = resource_name(probe.id)

    def shipyard_status() -> float:
        start = time.perf_counter()
        probe.status()
        return time.perf_counter() - start

    def plain_read() -> float:
        start = time.perf_counter()
        batch.read_namespaced_job(name, NS)
        return time.perf_counter() - start

    before = len(emulator.requests)
    reads = interleave({"shipyard status": shipyard_status, "plain read": plain_read},
                       args.repeats)
    per_status = (len(emulator.requests) - before - args.repeats) / args.repeats
    print_table("status (one read of a pending job)", [
        ("plain read", median(reads["plain read"]), "1 request"),
        ("shipyard status", median(reads["shipyard status"]),
         f"{per_status:.0f} requests (Job, pods, events) + 1 S3 read")], "plain read")

    # wait: a job that completes RUN_SECONDS after the wait starts
    job = jobs[1]
    job_name = resource_name(job.id)
    batch.patch_namespaced_job_status(job_name, NS, {"status": {"active": 1}})
    core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"{job_name}-pod", "labels": {"shipyard.io/job": job_name,
                                               "app.kubernetes.io/component": "runner"}},
        "spec": {"containers": [{"name": "runner", "image": "x"}]},
        "status": {"phase": "Running"}})
    job.status()

    def complete_later(target: str, delay: float) -> None:
        def finish() -> None:
            batch.patch_namespaced_job_status(target, NS, {"status": {
                "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}})
        threading.Timer(delay, finish).start()

    before = len(emulator.requests)
    complete_later(job_name, RUN_SECONDS)
    started = time.perf_counter()
    job.wait(timeout=30)
    waited = time.perf_counter() - started
    watch_requests = len(emulator.requests) - before

    other = jobs[2]
    other_name = resource_name(other.id)
    before = len(emulator.requests)
    complete_later(other_name, RUN_SECONDS)
    started = time.perf_counter()
    while True:
        obj = api.sanitize_for_serialization(batch.read_namespaced_job(other_name, NS))
        if any(c.get("type") == "Complete" for c in (obj.get("status") or {}).get(
                "conditions") or []):
            break
        time.sleep(1.0)
    polled = time.perf_counter() - started
    poll_requests = len(emulator.requests) - before - 1  # the timer's own patch
    print(f"\nwait (the job completes {RUN_SECONDS:g} s after the wait starts)")
    print(f"{'variant':<26}  {'requests':>8}  {'noticed after s':>15}")
    print(f"{'poll every 1 s (plain)':<26}  {poll_requests:>8}  {polled:>15.2f}")
    print(f"{'shipyard wait (watch)':<26}  {watch_requests:>8}  {waited:>15.2f}")
    emulator.close()
    s3.stop()


if __name__ == "__main__":
    main()
