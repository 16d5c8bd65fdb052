"""The contract every backend keeps: the same spec ends in the same states, exit codes,
result shape, logs and progress on the local backend, an existing Dask scheduler
(`tcp://`), a Ray head (`ray start --head` on loopback) and Kubernetes (kmock's API
emulator, the tests playing the Job controller and kubelet and running the runner pod's
exact command)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

import shipyard
from helpers import job_doc, shipyard as cli
from ray_head import ray_head  # noqa: F401 (a fixture)
from shipyard.backends.kubernetes.render import resource_name
from shipyard.jobs.api import exit_code_for
from test_k8s_backend import (Cluster, _job_failed, _labels, _terminated, bucket,  # noqa: F401
                              cluster, emulator)

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def scheduler():
    """An existing Dask scheduler with a worker, as a user's would be."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as found:
        yield found.scheduler_address


class Waits:
    """A backend that runs the job by itself: submit, then wait."""

    def __init__(self, name: str):
        self.name = name

    def finish(self, job: shipyard.Job, tmp_path: Path) -> None:
        job.wait(timeout=180)


class KubernetesTransport:
    """Plays the Job controller and kubelet for one attempt: a pod that runs the runner's
    exact command, then the Job's status from its exit code."""

    name = "kubernetes"

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    def finish(self, job: shipyard.Job, tmp_path: Path) -> None:
        name = resource_name(job.id)
        pod = self.cluster.pod(_labels(job), phase="Running")
        assert job.status().state == "RUNNING"
        code = self.cluster.run_runner_pod("Job", name, pod, tmp_path / "pod")
        self.cluster.pod_status(pod, phase="Succeeded" if code == 0 else "Failed",
                                containerStatuses=_terminated(
                                    "Completed" if code == 0 else "Error", code))
        if code == 0:
            status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        else:
            status = _job_failed("PodFailurePolicy" if code == 2 else "BackoffLimitExceeded")
        self.cluster.set_status("Job", name, status)
        job.wait(timeout=60)


@pytest.fixture(params=["local", "dask", "ray", "kubernetes"])
def transport(request, home, tmp_path):
    if request.param == "local":
        return Waits("local")
    if request.param == "dask":
        return Waits(request.getfixturevalue("scheduler"))
    if request.param == "ray":
        return Waits(request.getfixturevalue("ray_head")[0])
    return KubernetesTransport(request.getfixturevalue("cluster"))


def _run(transport, tmp_path: Path, entrypoint: str, params: dict | None = None):
    path = tmp_path / f"{entrypoint.replace(':', '-')}.yaml"
    path.write_text(yaml.safe_dump(job_doc(entrypoint, params, "contract")))
    job = shipyard.submit(str(path), cluster=transport.name)
    transport.finish(job, tmp_path)
    return job


def test_contract_success_same_states_result_and_logs(transport, tmp_path):
    job = _run(transport, tmp_path, "jobfuncs:echo", {"value": {"rows": 3}})
    record = job.status()
    assert record.state == "SUCCEEDED" and exit_code_for(record) == 0
    assert [e.state for e in job.events() if e.state] == ["PENDING", "RUNNING", "SUCCEEDED"]
    result = job.result()
    assert set(result) >= {"outputs", "value", "job_id", "attempt"}
    assert result["value"]["value"] == {"rows": 3}
    assert (result["job_id"], result["attempt"]) == (job.id, 1)
    status = json.loads(cli("status", job.id, "--json").stdout)
    assert set(status) >= {"id", "name", "state", "reason", "attempt", "cluster", "created_at",
                           "started_at", "finished_at", "progress"}
    logs = cli("logs", job.id)
    assert logs.returncode == 0 and "python workload" in logs.stdout
    if transport.name == "kubernetes":
        # the runner kept its own log with the results: it outlives the pod
        import s3fs

        settings = yaml.safe_load((Path(os.environ["SHIPYARD_HOME"]) / "clusters" /
                                   "kubernetes.yaml").read_text())["storage"]
        fs = s3fs.S3FileSystem(endpoint_url=settings["options"]["endpoint_url"])
        stored = fs.cat(f"{settings['url']}/runs/{job.id}/logs/attempt-1.log").decode()
        assert "python workload" in stored
        assert (job.run_dir / "logs" / "attempt-1.log").read_text() == stored


def test_contract_failures_same_kinds_and_exit_codes(transport, tmp_path):
    failed = _run(transport, tmp_path, "jobfuncs:boom", {"message": "kaputt"})
    record = failed.status()
    assert (record.state, exit_code_for(record)) == ("FAILED", 1)
    assert "ValueError: kaputt" in record.reason
    assert "kaputt" in cli("logs", failed.id).stdout
    bad = _run(transport, tmp_path, "jobfuncs:bad_input")
    record = bad.status()
    assert (record.state, record.failure_kind, exit_code_for(record)) == ("FAILED", "input", 2)
    assert "data/missing.csv: no such file" in record.reason


def test_contract_progress_reaches_status_json(transport, tmp_path):
    job = _run(transport, tmp_path, "jobfuncs:progress_steps", {"steps": 2, "pause": 0.05})
    status = json.loads(cli("status", job.id, "--json").stdout)
    assert status["state"] == "SUCCEEDED"
    progress = status["progress"]
    assert (progress["phase"], progress["done"], progress["total"]) == ("stepping", 2, 2)


def test_contract_code_next_to_the_spec_travels_with_the_job(transport, tmp_path):
    """A module that exists only beside the spec, whose function runs as a Dask task:
    wherever the job runs (a pod sees only the image; a tcp:// scheduler's workers and a
    Ray head see none of this folder), it comes from the job's code package."""
    (tmp_path / "beside_the_spec.py").write_text(
        "def double(x):\n    return 2 * x\n\n\n"
        "def main(ctx, n):\n    return {'doubled': ctx.client.submit(double, n).result()}\n")
    job = _run(transport, tmp_path, "beside_the_spec:main", {"n": 21})
    assert job.status().state == "SUCCEEDED", job.status().reason
    assert job.result()["value"] == {"doubled": 42}
