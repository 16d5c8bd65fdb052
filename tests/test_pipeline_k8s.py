"""Pipelines on the `kubernetes` backend, against kmock's emulator (tests/k8s_emulator.py)
with run directories in moto's S3, as tests/test_k8s_backend.py does for single jobs.

The pipeline's detached driver (``python -m shipyard.pipelines.driver``) is the real one:
it inherits the test's environment (SHIPYARD_HOME, the profile's kubeconfig pointing at
the emulator on loopback, the S3 credentials) and talks to the same API over HTTP. The
test plays the stage's runner (the run directory it keeps in S3), the kubelet (a runner
pod) and the Job controller (the Job's status), through the same APIs.
"""

from __future__ import annotations

import json
import os
import signal
import uuid

import pytest
import yaml

import shipyard
import test_k8s_backend
from helpers import pipeline_doc, python_stage, wait_until
from shipyard.backends.kubernetes.render import resource_name
from test_k8s_backend import CONTROLLER_AGENT, NS, Cluster, _labels, _terminated

# the same emulator, S3 bucket and `kubernetes` profile as the backend's own tests
emulator, bucket, cluster = (test_k8s_backend.emulator, test_k8s_backend.bucket,
                             test_k8s_backend.cluster)


def _pipeline_doc(name: str) -> dict:
    """Two python stages, ``b`` needing ``a`` and reading its output (a local path)."""
    return pipeline_doc(python_stage("a", "jobfuncs:echo", declared="out/a", value="A"),
                        python_stage("b", "jobfuncs:echo", needs=["a"],
                                     value="${stages.a.output}"), name=name)


def _pipeline_jobs(cluster: Cluster, pipeline: str) -> dict[str, dict]:
    """The batch/v1 Jobs of this pipeline's stages in the namespace, by stage (the stage's
    job name, ``<pipeline>-<stage>``, is the resource's ``shipyard.io/job-name``)."""
    found = {}
    for stage in ("a", "b"):
        items = cluster.plain(cluster.batch.list_namespaced_job(
            NS, label_selector=f"shipyard.io/job-name={pipeline}-{stage}"))["items"]
        assert len(items) <= 1, f"stage {stage} has {len(items)} Jobs"
        if items:
            found[stage] = items[0]
    return found


def _job_posts(requests: list) -> int:
    """How many batch/v1 Jobs shipyard (not the test's controller) asked to create."""
    return sum(1 for method, path, _, agent in requests
               if method == "POST" and path == f"/apis/batch/v1/namespaces/{NS}/jobs"
               and agent != CONTROLLER_AGENT)


def _succeed(cluster: Cluster, stage_job: shipyard.Job, value: str) -> int:
    """Play the stage's runner pod, the kubelet and the Job controller: the run directory
    the runner keeps in S3 (result, outcome, log), a runner pod that ran, then the Job
    Complete. Returns how many API requests had been made before the Job was Complete."""
    from shipyard.core.run_storage import RunStorage

    job_id, name = stage_job.id, resource_name(stage_job.id)
    pod = cluster.pod(_labels(stage_job), phase="Running")
    storage = yaml.safe_load(cluster.profile.read_text())["storage"]
    stored = RunStorage(f"{storage['url']}/runs/{job_id}", storage["options"])
    log = f"INFO    shipyard.runner: job {job_id} attempt 1: python workload\n"
    files = {
        "result.json": {"outputs": [], "value": {"value": value, "job_id": job_id},
                        "job_id": job_id, "attempt": 1, "workload": "python",
                        "artifacts": {}, "figures": [], "phases": [],
                        "report": "report/index.html"},
        "logs/attempt-1.outcome.json": {"status": "succeeded", "attempt": 1},
        "logs/attempt-1.started": "", "logs/attempt-1.log": log}
    for path, content in files.items():
        data = content if isinstance(content, str) else json.dumps(content)
        stored.fs.pipe(f"{stored.root}/{path}", data.encode())
    cluster.emulator.logs[(NS, pod)] = log
    cluster.pod_status(pod, phase="Succeeded", containerStatuses=_terminated("Completed", 0))
    before = len(cluster.emulator.requests)
    cluster.set_status("Job", name, {"succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True"}]})
    return before


def _stop_driver(record) -> None:
    """A driver left running by a failed test: end it (it cancels what it started)."""
    from shipyard.core.procs import is_alive

    if is_alive(record.supervisor_pid, record.supervisor_started):
        os.kill(record.supervisor_pid, signal.SIGTERM)


@pytest.mark.cluster
def test_each_stage_is_its_own_job_created_once_its_needs_succeeded(cluster, request):
    from shipyard.core.home import Home
    from shipyard.core.store import JobStore
    from shipyard.pipelines import store as stage_store

    store = JobStore(Home.from_env().db)
    name = f"kp-{uuid.uuid4().hex[:6]}"
    pipeline = shipyard.submit(_pipeline_doc(name), cluster="kubernetes")
    record = pipeline.status()
    assert record.kind == "pipeline"
    assert (record.cluster, record.backend) == ("kubernetes", "kubernetes")
    driver_pid = record.supervisor_pid
    assert driver_pid is not None
    request.addfinalizer(lambda: _stop_driver(record))

    # the driver submits stage a (it needs nothing) as a job of its own: one batch/v1 Job
    doc = wait_until(lambda: (d := pipeline.status_document())["stages"]["a"]["job_id"] and d,
                     timeout=120, what="stage a to be submitted")
    a_id = doc["stages"]["a"]["job_id"]
    assert doc["kind"] == "pipeline" and doc["state"] == "RUNNING"
    assert doc["stages"]["a"]["state"] == "RUNNING"
    assert doc["stages"]["b"]["state"] == "PENDING" and doc["stages"]["b"]["job_id"] is None
    a_name = resource_name(a_id)
    assert cluster.exists("Job", a_name), "stage a is no batch/v1 Job in the emulator"
    a_job = cluster.resource("Job", a_name)
    assert a_job["metadata"]["annotations"]["shipyard.io/job-id"] == a_id
    assert a_job["metadata"]["labels"]["shipyard.io/job-name"] == f"{name}-a"
    # the stage's labels are on its resource: kubectl get jobs -l shipyard.io/pipeline=NAME
    assert a_job["metadata"]["labels"]["shipyard.io/pipeline"] == name
    assert a_job["metadata"]["labels"]["shipyard.io/stage"] == "a"
    # the stage's spec (in its ConfigMap) is an ordinary job spec, labelled with its stage
    stage_spec = yaml.safe_load(cluster.config_map(a_name)["data"]["spec.yaml"])
    assert stage_spec["kind"] == "Job"
    assert stage_spec["metadata"]["labels"] == {"shipyard.io/pipeline": name,
                                                "shipyard.io/stage": "a"}
    assert stage_spec["spec"]["python"] == {"entrypoint": "jobfuncs:echo",
                                            "params": {"value": "A"}}
    # ... and a job of the store like any other, on the pipeline's cluster
    a_record = store.get(a_id)
    assert (a_record.kind, a_record.backend, a_record.cluster) == ("job", "kubernetes",
                                                                   "kubernetes")
    assert a_record.external_id == f"Job/{a_name}"
    assert a_record.labels["shipyard.io/stage"] == "a"

    # while a runs, the driver keeps looking at it (its reads of a's Job) and creates
    # nothing for b
    seen = len(cluster.emulator.requests)
    wait_until(lambda: sum(1 for m, p, _, agent in cluster.emulator.requests[seen:]
                           if m == "GET" and p.endswith(f"/jobs/{a_name}")
                           and agent != CONTROLLER_AGENT) >= 3,
               timeout=120, what="the driver to look at stage a's Job")
    assert set(_pipeline_jobs(cluster, name)) == {"a"}
    doc = pipeline.status_document()
    assert doc["stages"]["b"]["state"] == "PENDING" and doc["state"] == "RUNNING"
    assert _job_posts(cluster.emulator.requests) == 1

    # a succeeds: only then is b's Job created
    a_done = _succeed(cluster, shipyard.get_job(a_id), "A")
    doc = wait_until(lambda: (d := pipeline.status_document())["stages"]["b"]["job_id"] and d,
                     timeout=120, what="stage b to be submitted")
    assert _job_posts(cluster.emulator.requests[:a_done]) == 1
    assert _job_posts(cluster.emulator.requests) == 2
    assert doc["stages"]["a"]["state"] == "SUCCEEDED"
    assert doc["stages"]["b"]["state"] == "RUNNING"
    b_id = doc["stages"]["b"]["job_id"]
    b_name = resource_name(b_id)
    assert b_id != a_id and b_name != a_name
    jobs = _pipeline_jobs(cluster, name)
    assert set(jobs) == {"a", "b"} and jobs["b"]["metadata"]["name"] == b_name
    assert jobs["b"]["metadata"]["annotations"]["shipyard.io/job-id"] == b_id
    b_spec = yaml.safe_load(cluster.config_map(b_name)["data"]["spec.yaml"])
    assert b_spec["metadata"]["labels"]["shipyard.io/stage"] == "b"
    # b reads a's output where the cluster keeps it: a's local path is in the object
    # store under a's run (issue 19: it was the local path, which no pod has)
    storage = yaml.safe_load(cluster.profile.read_text())["storage"]["url"]
    assert b_spec["spec"]["python"]["params"]["value"] == f"{storage}/runs/{a_id}/outputs/out/a"

    # b succeeds: the pipeline ends SUCCEEDED, its result listing both stages
    _succeed(cluster, shipyard.get_job(b_id), "B")
    final = pipeline.wait(timeout=120)
    assert final.state.value == "SUCCEEDED", final.reason
    doc = pipeline.status_document()
    assert {s: (v["state"], v["job_id"], v["cached"]) for s, v in doc["stages"].items()} == {
        "a": ("SUCCEEDED", a_id, False), "b": ("SUCCEEDED", b_id, False)}
    assert doc["stages"]["b"]["needs"] == ["a"]
    assert doc["stages"]["a"]["finished_at"] <= doc["stages"]["b"]["started_at"]
    for stage_id in (a_id, b_id):
        assert shipyard.get_job(stage_id).status().state.value == "SUCCEEDED"
    result = json.loads((pipeline.run_dir / "result.json").read_text())
    assert (result["job_id"], result["state"], result["order"]) == (pipeline.id, "SUCCEEDED",
                                                                  ["a", "b"])
    assert set(result["stages"]) == {"a", "b"}
    for stage, stage_id, value in (("a", a_id, "A"), ("b", b_id, "B")):
        entry = result["stages"][stage]
        assert (entry["state"], entry["job_id"]) == ("SUCCEEDED", stage_id)
        # the stage's own result, as its runner stored it in S3
        assert entry["result"]["job_id"] == stage_id
        assert entry["result"]["value"]["value"] == value

    # the pipeline's state is all in the job store: the stages' table says the same
    assert store.get(pipeline.id).kind == "pipeline"
    assert [(s.name, s.state, s.job_id) for s in stage_store.stages(store, pipeline.id)] == [
        ("a", "SUCCEEDED", a_id), ("b", "SUCCEEDED", b_id)]
    notes = [e.message for e in store.events(pipeline.id)]
    assert f"stage a: submitted as job {a_id}" in notes
    assert f"stage b: submitted as job {b_id}" in notes
    # the real detached driver did it, and is not restarted
    assert store.get(pipeline.id).supervisor_pid == driver_pid
    assert not any("driver lost" in (n or "") for n in notes)
    # the stages' logs are copied into the pipeline's log, each line prefixed with its stage
    log = Home.from_env().attempt_log(pipeline.id, 1).read_text().splitlines()
    for stage, stage_id in (("a", a_id), ("b", b_id)):
        assert f"[pipeline] stage {stage}: submitted as job {stage_id}" in log
        assert (f"[{stage}] INFO    shipyard.runner: job {stage_id} attempt 1: python workload"
                in log)
