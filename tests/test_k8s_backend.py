"""The `kubernetes` backend through the real `kubernetes` client, over real HTTP, against
kmock's Kubernetes emulator (tests/k8s_emulator.py), with run directories in a real S3 API
(moto). No controller runs there: the tests play the Job controller, the operators and the
kubelet through the same API (creating pods, patching status, writing events), as
Kubernetes' own Job integration tests do, and run the runner pod's exact command here.

The contract suite that runs the same specs on every backend is tests/test_contract.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import yaml

import shipyard
from helpers import FIXTURES, ROOT, job_doc, shipyard as cli, wait_until
from k8s_emulator import Emulator
from shipyard.backends.kubernetes.render import resource_name
from shipyard.jobs.api import exit_code_for

NS = "shipyard"
CONTROLLER_AGENT = "test-controller"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def emulator():
    server = Emulator()
    yield server
    server.close()


@pytest.fixture(scope="module")
def bucket(s3_server):
    import s3fs

    for key, value in AWS.items():
        os.environ.setdefault(key, value)
    fs = s3fs.S3FileSystem(endpoint_url=s3_server)
    # the S3 server lives for the session: another module (test_pipeline_k8s) may have
    # made the bucket already
    if not fs.exists("runs"):
        fs.mkdir("runs")
    return s3_server


class Cluster:
    """The test's hands on the emulated cluster: what the controllers and kubelet do."""

    def __init__(self, emulator: Emulator, kubeconfig: Path, s3: str):
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(str(kubeconfig), client_configuration=configuration)
        self.api = client.ApiClient(configuration)
        self.api.user_agent = CONTROLLER_AGENT  # told apart from shipyard's requests
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.emulator = emulator
        self.s3 = s3

    def set_profile(self, **settings) -> None:
        """Change the `kubernetes` profile (jobs submitted from now on use it)."""
        data = yaml.safe_load(self.profile.read_text())
        self.profile.write_text(yaml.safe_dump({**data, **settings}))

    def plain(self, obj):
        return self.api.sanitize_for_serialization(obj)

    def resource(self, kind: str, name: str) -> dict:
        if kind == "Job":
            return self.plain(self.batch.read_namespaced_job(name, NS))
        group, plural = {"DaskJob": ("kubernetes.dask.org", "daskjobs"),
                         "RayJob": ("ray.io", "rayjobs")}[kind]
        return self.custom.get_namespaced_custom_object(group, "v1", NS, plural, name)

    def exists(self, kind: str, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.resource(kind, name)
            return True
        except ApiException as err:
            assert err.status == 404
            return False

    def config_map(self, name: str) -> dict:
        return self.plain(self.core.read_namespaced_config_map(f"{name}-spec", NS))

    def set_status(self, kind: str, name: str, status: dict) -> None:
        if kind == "Job":
            self.batch.patch_namespaced_job_status(name, NS, {"status": status})
            return
        group, plural = {"DaskJob": ("kubernetes.dask.org", "daskjobs"),
                         "RayJob": ("ray.io", "rayjobs")}[kind]
        self.custom.patch_namespaced_custom_object_status(group, "v1", NS, plural, name,
                                                          {"status": status})

    def pod(self, labels: dict, name: str | None = None, container: str = "runner",
            **status) -> str:
        name = name or f"{labels['shipyard.io/job']}-{uuid.uuid4().hex[:5]}"
        self.core.create_namespaced_pod(NS, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": container, "image": "shipyard:test"}]},
            "status": status})
        return name

    def pod_status(self, name: str, **status) -> None:
        self.core.patch_namespaced_pod_status(name, NS, {"status": status})

    def event(self, pod: str, reason: str, message: str) -> None:
        self.core.create_namespaced_event(NS, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{pod}.{uuid.uuid4().hex[:6]}"},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": NS},
            "type": "Warning", "reason": reason, "message": message,
            "lastTimestamp": "2026-11-25T10:00:00Z"})

    def run_runner_pod(self, kind: str, name: str, pod: str, workdir: Path) -> int:
        """Run the runner pod's exact command here: the ConfigMap mounted as files, the
        pod's scratch volume a temporary folder. Its output becomes the pod's log."""
        resource = self.resource(kind, name)
        pod_spec = (resource["spec"]["template"]["spec"] if kind == "Job"
                    else resource["spec"]["job"]["spec"])
        container = pod_spec["containers"][0]
        spec_dir = workdir / "etc-shipyard"
        spec_dir.mkdir(parents=True, exist_ok=True)
        for key, text in self.config_map(name)["data"].items():
            (spec_dir / key).write_text(text)
        args = [a.replace("/etc/shipyard", str(spec_dir)).replace("/work", str(workdir))
                for a in container["args"]]
        env = {**os.environ, **AWS,
               "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(ROOT / "jobs")])}
        proc = subprocess.run([sys.executable, *container["command"][1:], *args], cwd=workdir,
                              env=env, capture_output=True, text=True, timeout=120)
        self.emulator.logs[(NS, pod)] = proc.stdout + proc.stderr
        return proc.returncode


@pytest.fixture
def cluster(home, emulator, bucket, tmp_path, monkeypatch) -> Cluster:
    """A `kubernetes` profile for this test's SHIPYARD_HOME, pointed at the emulator."""
    for key, value in AWS.items():
        monkeypatch.setenv(key, value)
    kubeconfig = emulator.kubeconfig(tmp_path / "kubeconfig", NS)
    (home / "clusters").mkdir(parents=True, exist_ok=True)
    profile = home / "clusters" / "kubernetes.yaml"
    profile.write_text(yaml.safe_dump({
        "backend": "kubernetes", "kubeconfig": str(kubeconfig), "namespace": NS,
        "image": "shipyard:test",
        "storage": {"url": f"s3://runs/{uuid.uuid4().hex[:8]}",
                    "options": {"endpoint_url": bucket}}}))
    emulator.faults.clear()
    found = Cluster(emulator, kubeconfig, bucket)
    found.profile = profile
    return found


def _spec(tmp_path: Path, entrypoint: str, params: dict | None = None, name: str = "kjob",
          **spec) -> Path:
    path = tmp_path / f"{name}-{uuid.uuid4().hex[:4]}.yaml"
    path.write_text(yaml.safe_dump(job_doc(entrypoint, params, name, **spec)))
    return path


def _dataframe_spec(tmp_path: Path, **spec) -> Path:
    """A small dataframe job (a DaskJob on Kubernetes)."""
    data = tmp_path / "in.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    path = tmp_path / f"df-{uuid.uuid4().hex[:4]}.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "kdf"},
        "spec": {**spec, "dataframe": {"inputs": {"main": {"path": str(data)}},
                                       "steps": [{"query": "a > 1"}],
                                       "output": {"path": str(tmp_path / "o.parquet")}}}}))
    return path


def _one_of_each_kind(tmp_path: Path) -> list[tuple[str, Path]]:
    """A spec for each kind of resource: Job (python), DaskJob (dataframe), RayJob (torch)."""
    return [("Job", _spec(tmp_path, "jobfuncs:echo")), ("DaskJob", _dataframe_spec(tmp_path)),
            ("RayJob", ROOT / "jobs" / "digits-cnn.yaml")]


def _runner_status(**state) -> list[dict]:
    """A pod's containerStatuses: the runner container in ``state`` (waiting/terminated)."""
    return [{"name": "runner", "ready": False, "restartCount": 0, "image": "shipyard:test",
             "imageID": "", "state": state}]


def _terminated(reason: str, code: int) -> list[dict]:
    return _runner_status(terminated={"reason": reason, "exitCode": code})


def _job_failed(reason: str) -> dict:
    """A Job's status as the Job controller leaves it after one failed pod."""
    return {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": reason}]}


def _submit(path: Path, **kwargs) -> shipyard.Job:
    return shipyard.submit(str(path), cluster="kubernetes", **kwargs)


def _labels(job: shipyard.Job, attempt: int = 1) -> dict:
    return {"shipyard.io/job": resource_name(job.id), "shipyard.io/attempt": str(attempt),
            "app.kubernetes.io/component": "runner"}


def _once(condition, action, *args) -> threading.Thread:
    """Run ``action(*args)`` in a thread as soon as ``condition()`` holds (as a controller
    acts on what it sees, not after a fixed delay)."""
    def run():
        wait_until(condition, timeout=120, what="the condition to act on")
        action(*args)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _watches(cluster: Cluster, since: int) -> list[tuple]:
    """The watch requests shipyard made since request number ``since``."""
    return [r for r in cluster.emulator.requests[since:]
            if r[2].get("watch") == "true" and r[3] != CONTROLLER_AGENT]


def _when_watched(cluster: Cluster, action, *args) -> threading.Thread:
    """Run ``action(*args)`` once shipyard watches a resource (from now on)."""
    since = len(cluster.emulator.requests)
    return _once(lambda: _watches(cluster, since), action, *args)


# -- submit ----------------------------------------------------------------------------------


def test_submit_creates_the_job_and_its_spec_config_map(cluster, tmp_path):
    job = _submit(_spec(tmp_path, "jobfuncs:echo", {"value": 7}, retries=2, timeout="5m"))
    name = resource_name(job.id)
    resource = cluster.resource("Job", name)
    assert resource["metadata"]["annotations"]["shipyard.io/job-id"] == job.id
    assert resource["spec"]["backoffLimit"] == 2
    assert resource["spec"]["template"]["spec"]["activeDeadlineSeconds"] == 300
    config_map = cluster.config_map(name)
    assert yaml.safe_load(config_map["data"]["spec.yaml"])["spec"]["python"]["params"] == \
        {"value": 7}
    owner = config_map["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", name,
                                                            resource["metadata"]["uid"])
    record = job.status()
    assert record.state == "PENDING" and record.backend == "kubernetes"
    assert record.attempt == 1
    # `shipyard list` shows Kubernetes jobs with the local ones
    listed = json.loads(cli("list", "--json").stdout)
    assert [j["id"] for j in listed] == [job.id] and listed[0]["cluster"] == "kubernetes"


def test_catalog_job_through_the_cli(cluster, monkeypatch):
    monkeypatch.chdir(ROOT)
    submitted = cli("submit", "jobs/basics.yaml", "--cluster", "kubernetes")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert cluster.resource("Job", resource_name(job_id))["kind"] == "Job"
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert (status["state"], status["cluster"]) == ("PENDING", "kubernetes")
    assert cli("cancel", job_id).stdout.strip() == f"{job_id} CANCELLED"


def test_submitting_the_same_attempt_again_creates_nothing_new(cluster, tmp_path, home):
    from shipyard.backends import get_backend
    from shipyard.backends.profiles import resolve_cluster
    from shipyard.core.home import Home
    from shipyard.core.store import JobStore

    job = _submit(_spec(tmp_path, "jobfuncs:echo"))
    before = len(cluster.emulator.requests)
    store = JobStore(Home.from_env().db)
    backend = get_backend(resolve_cluster("kubernetes", Home.from_env().clusters),
                          Home.from_env(), store)
    backend._launch(store.get(job.id))  # a retried call, another process
    posts = [r for r in cluster.emulator.requests[before:] if r[0] == "POST"
             and r[3] != CONTROLLER_AGENT]
    assert len(posts) == 2  # the Job and the ConfigMap, each answered 409 and left alone
    jobs = cluster.plain(cluster.batch.list_namespaced_job(
        NS, label_selector=f"shipyard.io/job={resource_name(job.id)}"))["items"]
    assert len(jobs) == 1


# -- states ------------------------------------------------------------------------------------


def test_pending_says_why_a_pod_cannot_start_then_fails_after_start_timeout(cluster, tmp_path):
    # each job keeps the profile it was submitted with: an hour to look at a pending one,
    # a second for one to time out (nothing reads it, so nothing can fail it, until the
    # test has made its pod; then `wait` reads it until its own clock passes a second)
    cluster.set_profile(start_timeout="1h")
    job = _submit(_spec(tmp_path, "jobfuncs:echo"))
    cluster.pod(_labels(job), phase="Pending", containerStatuses=_runner_status(waiting={
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "shipyard:test"'}))
    record = job.status()
    assert record.state == "PENDING"
    assert record.reason == 'ImagePullBackOff: Back-off pulling image "shipyard:test"'
    assert json.loads(cli("status", job.id, "--json").stdout)["reason"].startswith(
        "ImagePullBackOff")

    cluster.set_profile(start_timeout="1s")
    late = _submit(_spec(tmp_path, "jobfuncs:echo", name="kjob-late"))
    cluster.pod(_labels(late), phase="Pending", containerStatuses=_runner_status(waiting={
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "shipyard:test"'}))
    record = late.wait(timeout=60)
    assert record.state == "FAILED" and record.failure_kind == "cluster"
    assert "ImagePullBackOff" in record.reason and "start_timeout" in record.reason
    assert exit_code_for(record) == 3
    assert not cluster.exists("Job", resource_name(late.id))  # nothing left pending
    assert job.status().state == "PENDING"  # its hour is not over

    # a job no pod ever appears for (the operator missing, a quota refusing pods) says so,
    # with the resource's own warning, and times out the same way
    cluster.set_profile(start_timeout="1h")
    stuck = _submit(_spec(tmp_path, "jobfuncs:echo", name="kjob-quota"))
    assert stuck.status().reason == "waiting for its pods to be created"
    cluster.event(resource_name(stuck.id), "FailedCreate",
                  'pods "x" is forbidden: exceeded quota: shipyard-jobs')
    assert stuck.status().reason.startswith("FailedCreate: pods \"x\" is forbidden")
    cluster.set_profile(start_timeout="1s")
    refused = _submit(_spec(tmp_path, "jobfuncs:echo", name="kjob-quota"))
    cluster.event(resource_name(refused.id), "FailedCreate",
                  'pods "y" is forbidden: exceeded quota: shipyard-jobs')
    record = refused.wait(timeout=60)
    assert (record.state, record.failure_kind) == ("FAILED", "cluster")
    assert "exceeded quota" in record.reason


def test_unschedulable_pod_and_warning_events_are_the_reason(cluster, tmp_path):
    job = _submit(_spec(tmp_path, "jobfuncs:echo"))
    cluster.pod(_labels(job), phase="Pending", conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/4 nodes are available: 4 Insufficient memory."}])
    assert job.status().reason == "Unschedulable: 0/4 nodes are available: 4 Insufficient memory."
    other = _submit(_spec(tmp_path, "jobfuncs:echo", name="kjob-mount"))
    pod = cluster.pod(_labels(other), phase="Pending")
    cluster.event(pod, "FailedMount", 'configmap "x-spec" not found')
    assert other.status().reason == 'FailedMount: configmap "x-spec" not found'


@pytest.mark.parametrize("status, pod_status, state, kind, reason", [
    (_job_failed("DeadlineExceeded"), None, "FAILED", "timeout", "timeout"),
    (_job_failed("BackoffLimitExceeded"),
     {"phase": "Failed", "containerStatuses": _terminated("OOMKilled", 137)},
     "FAILED", "error", "OOMKilled (exit code 137)"),
    (_job_failed("PodFailurePolicy"),
     {"phase": "Failed", "containerStatuses": _terminated("Error", 2)},
     "FAILED", "input", "Error (exit code 2)"),
])
def test_job_failures_map_to_states_reasons_and_exit_codes(cluster, tmp_path, status,
                                                           pod_status, state, kind, reason):
    job = _submit(_spec(tmp_path, "jobfuncs:echo"))
    name = resource_name(job.id)
    pod = cluster.pod(_labels(job), phase="Running")
    assert job.status().state == "RUNNING"
    if pod_status:
        cluster.pod_status(pod, **pod_status)
    cluster.set_status("Job", name, status)
    record = job.wait(timeout=120)
    assert (record.state, record.failure_kind) == (state, kind)
    assert reason in record.reason
    assert exit_code_for(record) == {"error": 1, "timeout": 1, "input": 2}[kind]


def test_job_retries_move_the_attempt_on(cluster, tmp_path):
    job = _submit(_spec(tmp_path, "jobfuncs:echo", retries=2))
    name = resource_name(job.id)
    cluster.pod(_labels(job), phase="Failed")
    cluster.set_status("Job", name, {"failed": 1, "active": 1})
    cluster.pod(_labels(job), phase="Running")
    record = job.status()
    assert (record.state, record.attempt) == ("RUNNING", 2)
    cluster.set_status("Job", name, {"failed": 1, "succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True"}]})
    record = job.wait(timeout=120)
    assert (record.state, record.attempt) == ("SUCCEEDED", 2)
    assert [e.state for e in job.events() if e.state] == [
        "PENDING", "RUNNING", "PENDING", "RUNNING", "SUCCEEDED"]


def test_an_attempts_log_is_its_pods_not_one_a_disruption_replaced(cluster, tmp_path):
    """A pod that a drain or preemption ended is replaced without counting as an attempt
    (the Job's podFailurePolicy ignores DisruptionTarget): attempt 2's log is the pod
    after it, not the second pod."""
    job = _submit(_spec(tmp_path, "jobfuncs:echo", retries=2))
    name = resource_name(job.id)
    first = cluster.pod(_labels(job), name=f"{name}-aaaaa", phase="Failed",
                        containerStatuses=_terminated("Error", 1))
    evicted = cluster.pod(_labels(job), name=f"{name}-bbbbb", phase="Failed", conditions=[
        {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}])
    second = cluster.pod(_labels(job), name=f"{name}-ccccc", phase="Running")
    for pod, text in ((first, "attempt one\n"), (evicted, "evicted\n"),
                      (second, "attempt two\n")):
        cluster.emulator.logs[(NS, pod)] = text
    cluster.set_status("Job", name, {"failed": 1, "active": 1})
    assert job.status().attempt == 2
    assert list(job.logs()) == ["attempt one", "--- attempt 2 ---", "attempt two"]


def test_dask_job_states_and_retry_as_a_new_resource(cluster, tmp_path):
    job = _submit(_dataframe_spec(tmp_path, retries=1))
    first = resource_name(job.id)
    assert cluster.resource("DaskJob", first)["spec"]["cluster"]["spec"]["worker"]["replicas"] == 2
    cluster.set_status("DaskJob", first, {"jobStatus": "ClusterCreated"})
    assert job.status().state == "PENDING"
    cluster.set_status("DaskJob", first, {"jobStatus": "Running"})
    assert job.status().state == "RUNNING"
    cluster.pod(_labels(job), phase="Failed", containerStatuses=_terminated("Error", 1))
    cluster.set_status("DaskJob", first, {"jobStatus": "Failed"})
    record = job.status()
    second = resource_name(job.id, 2)
    assert (record.state, record.attempt) == ("PENDING", 2)
    assert cluster.resource("DaskJob", second)["metadata"]["labels"]["shipyard.io/attempt"] == "2"
    _when_watched(cluster, cluster.set_status, "DaskJob", second, {"jobStatus": "Successful"})
    assert job.wait(timeout=60).state == "SUCCEEDED"


def test_ray_job_states(cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    job = _submit(ROOT / "jobs" / "digits-cnn.yaml")
    name = resource_name(job.id)
    assert cluster.resource("RayJob", name)["kind"] == "RayJob"
    cluster.set_status("RayJob", name, {"jobDeploymentStatus": "Initializing"})
    assert job.status().state == "PENDING"
    cluster.set_status("RayJob", name, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"})
    assert job.status().state == "RUNNING"
    cluster.set_status("RayJob", name, {
        "jobDeploymentStatus": "Failed", "jobStatus": "RUNNING", "reason": "DeadlineExceeded",
        "failed": 1, "message": "The RayJob has passed activeDeadlineSeconds"})
    # a timed-out attempt is retried (spec.retries: 1) as a RayJob of its own; the
    # finished one is deleted once its results are read
    record = job.status()
    assert (record.state, record.attempt) == ("PENDING", 2)
    assert "timeout" in job.events()[-2].message
    assert not cluster.exists("RayJob", name)
    second = resource_name(job.id, 2)
    assert "--attempt 2" in cluster.resource("RayJob", second)["spec"]["entrypoint"]
    _when_watched(cluster, cluster.set_status, "RayJob", second, {
        "jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "AppFailed",
        "failed": 1, "message": "Job entrypoint command failed with exit code 1"})
    record = job.wait(timeout=60)
    assert (record.state, record.failure_kind, record.attempt) == ("FAILED", "error", 2)
    assert "AppFailed" in record.reason


# -- cancel --------------------------------------------------------------------------------------


def test_cancel_deletes_everything_with_foreground_propagation(cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    for kind, spec in _one_of_each_kind(tmp_path):
        job = _submit(spec)
        name = resource_name(job.id)
        before = len(cluster.emulator.requests)
        proc = cli("cancel", job.id)
        assert proc.returncode == 0, proc.stderr
        assert job.status().state == "CANCELLED"
        assert not cluster.exists(kind, name)
        assert not [c for c in cluster.plain(cluster.core.list_namespaced_config_map(NS))["items"]
                    if c["metadata"]["name"] == f"{name}-spec"]
        deletes = [r for r in cluster.emulator.requests[before:] if r[0] == "DELETE"]
        assert {r[1].rsplit("/", 1)[1] for r in deletes} == {name, f"{name}-spec"}
        resource_delete = next(r for r in deletes if r[1].endswith(f"/{name}"))
        assert resource_delete[2].get("propagationPolicy") == "Foreground"


# -- API errors ------------------------------------------------------------------------------------


def test_overloaded_api_is_retried_and_forbidden_is_explained(cluster, tmp_path, monkeypatch):
    from shipyard.backends.kubernetes.client import KubernetesClient
    from shipyard.backends.kubernetes.backend import KubernetesBackend
    from shipyard.core.errors import ClusterError

    monkeypatch.setattr(KubernetesClient, "RETRY_DELAY", 0.01)
    path = _spec(tmp_path, "jobfuncs:echo")
    cluster.emulator.fault("POST", "/jobs", 429, times=2, **{"Retry-After": "0"})
    cluster.emulator.fault("GET", "/jobs/", 500, times=1)
    job = _submit(path)
    assert job.status().state == "PENDING"
    cluster.emulator.fault("POST", "/jobs", 403, times=1)
    proc = cli("submit", str(path), "--cluster", "kubernetes")
    assert proc.returncode == 3
    assert "403 Forbidden" in proc.stderr and "k8s/submitter-role.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr
    # an API that keeps failing: a clear error after a few tries, nothing recorded
    cluster.emulator.fault("GET", "/version", 503, times=99)
    jobs_before = len(shipyard.list_jobs())
    with pytest.raises(ClusterError, match="503"):
        _submit(path)
    assert len(shipyard.list_jobs()) == jobs_before
    # reads of a job while the API fails: retried, then the known state stands (no error,
    # no hang) until it has failed for UNREACHABLE_LIMIT, then exit 3
    cluster.emulator.faults.clear()
    failing = cluster.emulator.fault("GET", "/jobs/", 500, times=99)
    assert job.status().state == "PENDING"
    assert failing.times == 99 - KubernetesClient.REQUEST_ATTEMPTS
    monkeypatch.setattr(KubernetesBackend, "UNREACHABLE_LIMIT", 0.0)
    with pytest.raises(ClusterError, match="500"):
        job.status()


def test_wait_watches_and_survives_a_dropped_watch(cluster, tmp_path):
    """How soon a wait notices a change is a figure of tests/bench/bench_k8s.py; here: the
    change reaches the wait through its watch, not by reading the Job again and again."""
    job = _submit(_spec(tmp_path, "jobfuncs:echo"))
    name = resource_name(job.id)
    cluster.pod(_labels(job), phase="Running")
    assert job.status().state == "RUNNING"
    before = len(cluster.emulator.requests)
    done = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    # the Job completes while the wait is watching it
    _once(lambda: _watches(cluster, before), cluster.set_status, "Job", name, done)
    assert job.wait(timeout=60).state == "SUCCEEDED"
    reads = [r for r in cluster.emulator.requests[before:] if r[1].endswith(f"/jobs/{name}")
             and r[3] != CONTROLLER_AGENT]
    # a read before the watch, one after the change it reported (polling would have read
    # the Job until it saw the change)
    assert len(_watches(cluster, before)) == 1 and len(reads) <= 3

    other = _submit(_spec(tmp_path, "jobfuncs:echo", name="kjob-drop"))
    name = resource_name(other.id)
    cluster.pod(_labels(other), phase="Running")
    assert other.status().state == "RUNNING"
    before = len(cluster.emulator.requests)
    dropped = cluster.emulator.fault("GET", "/jobs", 0, times=3, watch=True)
    refused = cluster.emulator.fault("GET", "/jobs", 500, times=3, watch=True)
    # the Job completes once the wait watches again after three dropped and three
    # refused watches
    _once(lambda: len(_watches(cluster, before)) >= 7, cluster.set_status, "Job", name, done)
    assert other.wait(timeout=60).state == "SUCCEEDED"
    assert dropped.times == refused.times == 0
    assert len(_watches(cluster, before)) == 7


def test_a_change_between_a_read_and_the_watch_is_not_missed(cluster, tmp_path, monkeypatch):
    """The watch starts from the version the backend last read: a Job that completed in
    between ends the wait at once, not when the watch runs out (an hour here; it was up
    to WATCH_SECONDS late, and a wait under load missed its bound that way)."""
    from shipyard.backends import get_backend
    from shipyard.backends.kubernetes.backend import KubernetesBackend
    from shipyard.backends.profiles import resolve_cluster
    from shipyard.core.home import Home
    from shipyard.core.store import JobStore

    monkeypatch.setattr(KubernetesBackend, "WATCH_SECONDS", 3600)
    job = _submit(_spec(tmp_path, "jobfuncs:echo"))
    name = resource_name(job.id)
    cluster.pod(_labels(job), phase="Running")
    store = JobStore(Home.from_env().db)
    backend = get_backend(resolve_cluster("kubernetes", Home.from_env().clusters),
                          Home.from_env(), store)
    assert backend.refresh(store.get(job.id)).state == "RUNNING"  # the read
    cluster.set_status("Job", name, {"succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True"}]})
    waiting = threading.Thread(target=backend.await_change,
                               args=(store.get(job.id), 0.1, 3600), daemon=True)
    waiting.start()
    waiting.join(60)  # only stops a hung test
    assert not waiting.is_alive(), "the wait missed a change made before its watch began"
    assert backend.refresh(store.get(job.id)).state == "SUCCEEDED"


def test_cluster_status_says_whether_the_api_answers(cluster, tmp_path, home):
    proc = cli("cluster", "status", "kubernetes", "--json")
    info = json.loads(proc.stdout)
    assert (info["backend"], info["up"], info["namespace"]) == ("kubernetes", True, NS)
    assert info["address"] == cluster.emulator.url


# -- the submitter's Role covers exactly what the client asked for --------------------------------


def _rbac(method: str, path: str, query: dict) -> tuple[str, str, str] | None:
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        group, rest = "", parts[2:]
    elif parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None  # /version and discovery: readable by every authenticated user
    if rest[:1] == ["namespaces"]:
        rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 and rest[2] != "status" else "")
    named = len(rest) > 1
    verb = {"POST": "create", "DELETE": "delete", "PATCH": "patch", "PUT": "update"}.get(
        method) or ("watch" if query.get("watch") in ("true", "1") else
                    "get" if named else "list")
    return group, resource, verb


def test_role_covers_exactly_the_requests_the_client_made(cluster, tmp_path, monkeypatch):
    """Every request shipyard makes through a job's life, for each kind of resource, is
    one the submitter Role allows, and the Role allows nothing it does not make."""
    from test_k8s_manifests import kustomize_resources

    monkeypatch.chdir(ROOT)
    before = len(cluster.emulator.requests)
    finished = {"Job": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
                "DaskJob": {"jobStatus": "Successful"},
                "RayJob": {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}}
    for kind, spec in _one_of_each_kind(tmp_path):
        job = _submit(spec)
        pod = cluster.pod(_labels(job), phase="Pending")
        job.status()                                     # pods, and their events
        cluster.pod_status(pod, phase="Running")
        _when_watched(cluster, cluster.set_status, kind, resource_name(job.id), finished[kind])
        assert job.wait(timeout=60).state == "SUCCEEDED"  # a watch; results and logs saved
        assert cli("logs", job.id).returncode == 0
        cancelled = _submit(spec)
        assert cli("cancel", cancelled.id).returncode == 0
    role = next(d for d in kustomize_resources() if d["kind"] == "Role")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}
    made = {_rbac(method, path, query) for method, path, query, agent
            in cluster.emulator.requests[before:] if agent.startswith("shipyard/")} - {None}
    assert made <= granted, f"requests the Role does not allow: {made - granted}"
    assert granted <= made, f"granted but never used: {granted - made}"
