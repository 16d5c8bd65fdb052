"""Kubernetes jobs as the operators really run them (tests/k8s_operators.py emulates
dask-kubernetes 2026.3.0 and KubeRay v1.7.0 from their source): a torch job's entrypoint
goes through KubeRay's submitter script under a real `bash -ce` and trains on a real Ray
cluster with its checkpoints in the object store; a DaskJob's runner starts before its
scheduler and waits for it; the pods the operators label are told apart; a timed-out
RayJob gives its cluster back.

The API server is kmock's emulator, the object store moto's S3 server, as in
test_k8s_backend.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import shipyard
from helpers import FIXTURES, ROOT, wait_until
from k8s_operators import DaskOperator, KubeRayOperator, Kubelet
from ray_head import ray_head  # noqa: F401 (a fixture)
from shipyard.backends.kubernetes.render import resource_name
from shipyard.jobs.api import exit_code_for
from test_k8s_backend import (AWS, NS, Cluster, _dataframe_spec, bucket, cluster,  # noqa: F401
                              emulator)

pytestmark = pytest.mark.cluster


def _kubelet(root: Path, **services: str) -> Kubelet:
    """This machine as the nodes: the image's PATH and PYTHONPATH (the catalog's Python,
    the tests' entrypoints), and the storage credentials a Secret would hand the pods."""
    return Kubelet(root=root, services=dict(services), environ={
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "jobs"), str(FIXTURES)]),
        "LANG": "C.UTF-8", **AWS})


def _joins(head) -> dict[str, str]:
    """What the emulated Ray head's driver needs to join the real Ray cluster: its GCS
    address and, where the cluster wants one, its auth token (HOME is the pod's; `ray
    start` turned token authentication on because ~/.ray/auth_token exists)."""
    env = {"RAY_ADDRESS": head.gcs}
    token = Path.home() / ".ray" / "auth_token"
    if token.is_file():
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    return env


def _s3(cluster: Cluster):
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=cluster.s3)


def _storage_url(cluster: Cluster) -> str:
    return yaml.safe_load(cluster.profile.read_text())["storage"]["url"]


def _roles(cluster: Cluster, job: shipyard.Job) -> list[str]:
    pods = cluster.plain(cluster.core.list_namespaced_pod(
        NS, label_selector=f"shipyard.io/job={resource_name(job.id)}"))["items"]
    return sorted(p["metadata"]["labels"].get("app.kubernetes.io/component", "-") for p in pods)


# -- KubeRay: a torch job ----------------------------------------------------------------------


def test_a_torch_job_trains_through_kuberays_submitter(bucket, ray_head, cluster, tmp_path):
    """The entrypoint reaches the head whole (KubeRay writes it unquoted into a `bash -ce`
    line: `cd /work && ...` ran the runner in the submitter pod, and the job ended
    SUCCEEDED without training), and the checkpoints go to the object store (Ray refuses
    a path on the head when the workers are in other pods)."""
    job = shipyard.submit(str(ROOT / "jobs" / "digits-cnn.yaml"), cluster="kubernetes",
                          overrides=["spec.torch.config.epochs=1", "spec.retries=0"])
    name = resource_name(job.id)
    kuberay = KubeRayOperator(cluster.core, cluster.custom, NS, _kubelet(tmp_path / "pods"),
                              dashboard=ray_head[0].removeprefix("http://"),
                              head_environ=_joins(ray_head),
                              logs=cluster.emulator.logs)
    run = kuberay.provision(name)
    assert job.status().state == "PENDING"
    kuberay.submit(name, tmp_path / "kuberay")
    # the submitter pod submitted the runner and followed it, once
    assert run.exits == [0], [cluster.emulator.logs[(NS, p)] for p in run.submitters]
    entrypoint = (tmp_path / "kuberay" / "ray-jobs" / run.job_id / "entrypoint").read_text()
    assert " -m shipyard.runtime.runner " in entrypoint
    record = job.wait(timeout=120)
    assert record.state == "SUCCEEDED", record.reason
    result = job.result()
    assert [m["epoch"] for m in result["metrics"]] == [0]
    # Ray Train kept its checkpoints under <storage.url>/train/<job id>, which the worker
    # pods reach, through the storage's endpoint
    stored = _s3(cluster).find(f"{_storage_url(cluster)}/train/{job.id}".removeprefix("s3://"))
    assert any("checkpoint" in path for path in stored), stored
    assert not (tmp_path / "pods" / run.head / "work" / "run" / "train").exists()
    # what the submitter pod printed is the runner's log (`ray job logs --follow`)
    assert f"job {job.id} attempt 1: torch workload" in "".join(job.logs())


def test_a_timed_out_ray_job_gives_its_cluster_back(cluster, tmp_path):
    """KubeRay's deadline only marks the RayJob Failed; the Ray cluster (its GPUs) goes
    ttlSecondsAfterFinished later - at once here. And the run's own timeout is kept by
    shipyard, since KubeRay's clock also counts the cluster's provisioning."""
    kuberay = KubeRayOperator(cluster.core, cluster.custom, NS, _kubelet(tmp_path / "pods"),
                              dashboard="127.0.0.1:1", head_environ={},
                              logs=cluster.emulator.logs)
    job = shipyard.submit(str(ROOT / "jobs" / "digits-cnn.yaml"), cluster="kubernetes",
                          overrides=["spec.timeout=1h", "spec.retries=0"])
    name = resource_name(job.id)
    kuberay.provision(name)
    assert _roles(cluster, job) == ["head", "worker", "worker"]
    kuberay.pass_deadline(name)
    assert _roles(cluster, job) == []   # nobody had to read the job for that
    record = job.wait(timeout=60)
    assert (record.state, record.failure_kind) == ("FAILED", "timeout")

    # a Ray job that has run past spec.timeout is stopped by the reader that sees it
    job = shipyard.submit(str(ROOT / "jobs" / "digits-cnn.yaml"), cluster="kubernetes",
                          overrides=["spec.timeout=1s", "spec.retries=0"])
    name = resource_name(job.id)
    kuberay.provision(name)
    cluster.set_status("RayJob", name, {"jobDeploymentStatus": "Running",
                                        "jobStatus": "RUNNING"})
    record = job.wait(timeout=60)
    assert (record.state, record.failure_kind, record.reason) == ("FAILED", "timeout", "timeout")
    assert "attempt 1 ran past 1s" in [e.message for e in job.events()]
    assert not cluster.exists("RayJob", name)


# -- dask-kubernetes: a DaskJob ------------------------------------------------------------------


def test_a_dask_job_is_told_apart_from_its_scheduler_and_workers(cluster, tmp_path):
    """The operator copies the DaskJob's labels onto every pod it makes: a Running
    scheduler is not the job running, and a worker killed in the clean-up (exit 143) is
    not why the job failed."""
    operator = DaskOperator(cluster.core, cluster.custom, NS)
    cluster.set_profile(start_timeout="1h")
    job = shipyard.submit(str(_dataframe_spec(tmp_path)), cluster="kubernetes")
    pods = operator.create_components(resource_name(job.id))
    assert _roles(cluster, job) == ["runner", "scheduler", "worker", "worker"]
    operator.set_pod(pods.scheduler, phase="Running", conditions=[
        {"type": "Ready", "status": "True"}])
    for worker in pods.workers:
        operator.set_pod(worker, phase="Running")
    unschedulable = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                      "message": "0/3 nodes are available: 3 Insufficient memory."}]
    operator.set_pod(pods.runner, phase="Pending", conditions=unschedulable)
    record = job.status()
    assert record.state == "PENDING"
    assert record.reason.startswith("Unschedulable: 0/3 nodes")

    cluster.set_profile(start_timeout="1s")
    stuck = shipyard.submit(str(_dataframe_spec(tmp_path)), cluster="kubernetes")
    pods = operator.create_components(resource_name(stuck.id))
    operator.set_pod(pods.scheduler, phase="Running", conditions=[
        {"type": "Ready", "status": "True"}])
    operator.set_pod(pods.runner, phase="Pending", conditions=unschedulable)
    record = stuck.wait(timeout=60)
    assert (record.state, record.failure_kind) == ("FAILED", "cluster")
    assert "start_timeout" in record.reason

    cluster.set_profile(start_timeout="1h")
    bad = shipyard.submit(str(_dataframe_spec(tmp_path)), cluster="kubernetes")
    name = resource_name(bad.id)
    pods = operator.create_components(name)
    operator.runner_phase(name, pods, "Running")
    assert bad.status().state == "RUNNING"
    operator.runner_phase(name, pods, "Failed", exit_code=2)
    record = bad.wait(timeout=60)
    assert (record.state, record.failure_kind) == ("FAILED", "input"), record.reason
    assert "exit code 2" in record.reason
    assert exit_code_for(record) == 2


def _held_port() -> socket.socket:
    """A loopback port that refuses connections until a server binds it: bound (with
    SO_REUSEADDR, as tornado binds too) and not listening. Choosing a free port and
    binding it later races with other tests' connections."""
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", 0))
    return held


def test_a_dask_job_runner_waits_for_its_scheduler(cluster, tmp_path):
    """The operator creates the runner pod before the scheduler's; the scheduler's
    Service routes only to a Ready pod, after the image is pulled. The runner waits (up
    to start_timeout), and the output it was given at a local path is in the object
    store: the workers wrote it there."""
    from distributed import LocalCluster

    operator = DaskOperator(cluster.core, cluster.custom, NS)
    job = shipyard.submit(str(_dataframe_spec(tmp_path)), cluster="kubernetes")
    name = resource_name(job.id)
    pods = operator.create_components(name)
    held = _held_port()
    port = held.getsockname()[1]
    kubelet = _kubelet(tmp_path / "pods", **{
        f"{name}-scheduler.{NS}.svc.cluster.local:8786": f"127.0.0.1:{port}"})
    pod = operator.pod(pods.runner)
    container = pod["spec"]["containers"][0]
    config_map = cluster.config_map(name)["data"]
    mounts = kubelet.mounts(pods.runner, container, {"/etc/shipyard": config_map})
    operator.runner_phase(name, pods, "Running")
    assert job.status().state == "RUNNING"
    log = tmp_path / "runner.log"
    with open(log, "w") as out:
        runner = subprocess.Popen(kubelet.command(container, mounts),
                                  env=kubelet.env(container, mounts),
                                  cwd=mounts["/work"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "waiting up to" in log.read_text() or runner.poll() is not None,
                   timeout=120, what="the runner to wait for its scheduler")
        assert runner.poll() is None, log.read_text()  # still waiting, not given up
        # the scheduler's pod is Ready: its Service answers
        with LocalCluster(scheduler_port=port, n_workers=1, threads_per_worker=1,
                          processes=False, dashboard_address=":0"):
            held.close()
            code = runner.wait(timeout=300)  # only stops a hung test
    finally:
        held.close()
        if runner.poll() is None:
            runner.kill()
    assert code == 0, log.read_text()
    operator.runner_phase(name, pods, "Succeeded")
    record = job.wait(timeout=60)
    assert record.state == "SUCCEEDED", record.reason
    (output,) = job.result()["outputs"]
    assert output.startswith(f"{_storage_url(cluster)}/runs/{job.id}/outputs/")
    import pandas as pd

    frame = pd.read_parquet(output, storage_options={"endpoint_url": cluster.s3})
    assert frame.to_dict("list") == {"a": [3], "b": [4]}
    notes = [e.message for e in job.events() if e.message and e.message.startswith("note:")]
    assert notes and "spec.dataframe.output.path" in notes[0]
