"""Kubernetes manifests of a job: what ``shipyard render --cluster kubernetes`` prints and
the ``kubernetes`` backend creates.

Each attempt is two objects: a ConfigMap that carries the spec (and where the run
directory lives), and the workload's resource, chosen by workload:

- ``dataframe`` / ``sklearn`` -> a ``DaskJob`` (dask-kubernetes operator): a scheduler,
  ``spec.resources.workers`` worker pods, and the runner pod, which the operator points at
  the scheduler through ``DASK_SCHEDULER_ADDRESS``;
- ``torch`` -> a ``RayJob`` (KubeRay): a Ray cluster with ``torch.scaling.workers``
  worker pods; the runner is the Ray job's entrypoint on the head, as with the ``ray``
  backend;
- ``python`` -> a ``batch/v1`` Job with one runner pod.

Every pod runs the image's ``python -m shipyard.jobs.runner`` (or Dask's / Ray's own
processes), meets the Pod Security "restricted" profile and mounts no service-account
token: no job pod talks to the Kubernetes API. A Job's ``retries`` are its
``backoffLimit`` (bad input, exit 2, fails it at once through its ``podFailurePolicy``);
DaskJobs have no retries and a RayJob's would rerun bad input, so for those two each
attempt is its own resource (``<name>-a2``, ...) that the backend creates. ``timeout`` is
the runner pod's ``activeDeadlineSeconds`` (a RayJob's own, for its one attempt). Kubernetes
deletes finished Jobs after ``ttl_after_finished``; the backend deletes finished DaskJobs
and RayJobs once it has their results.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import TYPE_CHECKING, Any

from shipyard.jobs.ids import JOB_ID_PATTERN
from shipyard.jobs.states import RUNNER_EXIT_CODES, FailureKind
from shipyard.units import format_memory

if TYPE_CHECKING:
    from shipyard.cluster.k8s_settings import KubernetesSettings
    from shipyard.spec import JobSpec

__all__ = ["render", "local_inputs", "local_inputs_warning", "resource_name", "resource_kind", "KINDS", "PER_ATTEMPT", "LABEL_JOB",
           "LABEL_ATTEMPT", "LABEL_ROLE", "ANNOTATION_JOB_ID", "RUNNER_CONTAINER"]

#: workload -> (apiVersion, kind, plural) of the resource that runs it
KINDS = {
    "DaskJob": ("kubernetes.dask.org/v1", "DaskJob", "daskjobs"),
    "RayJob": ("ray.io/v1", "RayJob", "rayjobs"),
    "Job": ("batch/v1", "Job", "jobs"),
}
_WORKLOAD_KINDS = {"dataframe": "DaskJob", "sklearn": "DaskJob", "torch": "RayJob",
                   "python": "Job"}

LABEL_JOB = "shipyard.io/job"            # the job's resource name: unique, at most 63 chars
LABEL_NAME = "shipyard.io/job-name"      # metadata.name of the spec
LABEL_ATTEMPT = "shipyard.io/attempt"
LABEL_ROLE = "app.kubernetes.io/component"
ANNOTATION_JOB_ID = "shipyard.io/job-id"  # the full job id (labels hold at most 63 chars)
RUNNER_CONTAINER = "runner"
#: Kinds with one resource per attempt (the others retry in place: batch/v1 Job).
PER_ATTEMPT = frozenset({"DaskJob", "RayJob"})

#: In every job pod: the ConfigMap (read-only) and a writable scratch volume.
SPEC_DIR = "/etc/shipyard"
WORK_DIR = "/work"
RUN_DIR = f"{WORK_DIR}/run"
#: The image's unprivileged user (cluster/Dockerfile).
IMAGE_UID = 10001


def resource_kind(spec: JobSpec) -> str:
    """Which resource runs this spec's workload: ``DaskJob``, ``RayJob`` or ``Job``."""
    return _WORKLOAD_KINDS[spec.workload_name]


def resource_name(job_id: str, attempt: int = 1) -> str:
    """The Kubernetes name of a job's resource: short enough for every name the operators
    derive from it (DaskJob's ``<name>-scheduler`` service, KubeRay's cluster and service
    names), starting with a letter, unique through a digest of the full job id.

    Examples
    --------
    >>> resource_name("churn-prep-20261125-101500-ab12")
    'churn-prep-2b73c1ca22'
    >>> resource_name("7up-20261125-101500-ab12", attempt=2)
    'j7up-4128387848-a2'
    """
    digest = hashlib.sha1(job_id.encode()).hexdigest()[:10]
    match = JOB_ID_PATTERN.match(job_id)
    short = (match.group("name") if match else job_id)[:24].rstrip("-")
    if not short[0].isalpha():
        short = "j" + short
    name = f"{short}-{digest}"
    return name if attempt == 1 else f"{name}-a{attempt}"


def _labels(spec: JobSpec, job_id: str, attempt: int, role: str | None = None) -> dict[str, str]:
    # the spec's own labels (checked as Kubernetes labels when it was loaded) go first:
    # `kubectl get jobs -l team=growth` (or -l shipyard.io/pipeline=NAME for a
    # pipeline's stages) finds them; shipyard's own labels win a clash
    labels = {**spec.metadata.labels,
              "app.kubernetes.io/name": "shipyard", "app.kubernetes.io/managed-by": "shipyard",
              LABEL_JOB: resource_name(job_id), LABEL_NAME: spec.name,
              LABEL_ATTEMPT: str(attempt)}
    if role:
        labels[LABEL_ROLE] = role
    return labels


def _metadata(name: str, settings: KubernetesSettings, labels: dict[str, str],
              job_id: str) -> dict[str, Any]:
    return {"name": name, "namespace": settings.namespace, "labels": labels,
            "annotations": {ANNOTATION_JOB_ID: job_id}}


# -- pods ----------------------------------------------------------------------------------


def _container_security() -> dict[str, Any]:
    # Pod Security "restricted": no escalation, every capability dropped, non-root,
    # the runtime's default seccomp profile
    return {"allowPrivilegeEscalation": False, "privileged": False, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that divides them.

    Examples
    --------
    >>> quantity(4 * 2**30), quantity(1536 * 2**20), quantity(1000)
    ('4Gi', '1536Mi', '1000')
    """
    return format_memory(size).removesuffix("B")  # 4GiB -> 4Gi, 1000B -> 1000


def _resources(cpu: str | int | float, memory: str | int | None, gpus: int = 0,
               default_memory: str = "2Gi") -> dict[str, Any]:
    mem = quantity(memory) if isinstance(memory, int) else (memory or default_memory)
    requests = {"cpu": str(cpu), "memory": mem}
    # memory limited to what is requested (a pod over it is OOMKilled, not the node);
    # CPU not limited (throttling slows a job without protecting anything)
    limits: dict[str, Any] = {"memory": mem}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
        requests["nvidia.com/gpu"] = str(gpus)
    return {"requests": requests, "limits": limits}


def _container(name: str, settings: KubernetesSettings, *, resources: dict[str, Any],
               command: list[str] | None = None, args: list[str] | None = None,
               ports: list[dict[str, Any]] | None = None,
               mounts_spec: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name, "image": settings.image, "imagePullPolicy": settings.image_pull_policy,
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "HOME", "value": WORK_DIR}],
        "resources": resources, "securityContext": _container_security(),
        "volumeMounts": [{"name": "work", "mountPath": WORK_DIR}],
    }
    if command:
        container["command"] = command
    if args:
        container["args"] = args
    if ports:
        container["ports"] = ports
    if mounts_spec:
        container["volumeMounts"].append({"name": "spec", "mountPath": SPEC_DIR,
                                          "readOnly": True})
        container["workingDir"] = WORK_DIR
    if settings.storage.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.storage.credentials_secret}}]
    return container


def _pod_spec(settings: KubernetesSettings, containers: list[dict[str, Any]], *,
              config_map: str | None = None, restart: str | None = None,
              deadline: float | None = None) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "work", "emptyDir": {}}]
    if config_map:
        volumes.append({"name": "spec", "configMap": {"name": config_map}})
    pod: dict[str, Any] = {
        "serviceAccountName": settings.service_account,
        # no job pod calls the Kubernetes API: no token in it
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": IMAGE_UID,
                            "runAsGroup": IMAGE_UID, "fsGroup": IMAGE_UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
        "volumes": volumes,
    }
    if restart:
        pod["restartPolicy"] = restart
    if deadline:
        pod["activeDeadlineSeconds"] = int(deadline)
    if settings.node_selector:
        pod["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        pod["tolerations"] = [dict(t) for t in settings.tolerations]
    if settings.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in settings.image_pull_secrets]
    return pod


def runner_args(job_id: str, attempt: int | str, **addresses: str) -> list[str]:
    """The runner's arguments in a job pod: the spec from the ConfigMap, the run
    directory synced to the profile's object store (see :mod:`shipyard.jobs.run_sync`)."""
    args = ["--run-dir", RUN_DIR, "--job-id", job_id, "--attempt", str(attempt),
            "--spec-file", f"{SPEC_DIR}/spec.yaml", "--sync", f"{SPEC_DIR}/storage.json"]
    for key, value in addresses.items():
        args += [f"--{key.replace('_', '-')}", value]
    return args


RUNNER_COMMAND = ["python", "-m", "shipyard.jobs.runner"]


# -- the three kinds -------------------------------------------------------------------------


def _python_job(spec: JobSpec, settings: KubernetesSettings, job_id: str, attempt: int,
                name: str, config_map: str) -> dict[str, Any]:
    res = spec.spec.resources
    memory = res.memory_per_worker * res.workers if res.memory_per_worker else None
    runner = _container(RUNNER_CONTAINER, settings, command=RUNNER_COMMAND,
                        args=runner_args(job_id, "auto"), mounts_spec=True,
                        resources=_resources(res.workers * res.threads_per_worker, memory,
                                             res.gpus_per_worker * res.workers,
                                             settings.pod_resources.memory))
    labels = _labels(spec, job_id, attempt, "runner")
    body: dict[str, Any] = {
        "backoffLimit": spec.spec.retries,
        "ttlSecondsAfterFinished": settings.ttl_after_finished,
        # bad input fails the job at once; a node drain is not the job's failure
        "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": RUNNER_CONTAINER,
                                                  "operator": "In",
                                                  "values": [RUNNER_EXIT_CODES[FailureKind.INPUT]]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                      "status": "True"}]},
        ]},
        "template": {"metadata": {"labels": labels},
                     "spec": _pod_spec(settings, [runner], config_map=config_map,
                                       restart="Never", deadline=spec.spec.timeout)},
    }
    return body


def _dask_job(spec: JobSpec, settings: KubernetesSettings, job_id: str, attempt: int,
              name: str, config_map: str) -> dict[str, Any]:
    res = spec.spec.resources
    default = settings.pod_resources
    runner = _container(RUNNER_CONTAINER, settings, command=RUNNER_COMMAND,
                        # the operator sets DASK_SCHEDULER_ADDRESS in the runner's env
                        args=runner_args(job_id, attempt,
                                         dask_address="$(DASK_SCHEDULER_ADDRESS)"),
                        mounts_spec=True, resources=_resources(default.cpu, default.memory))
    memory_limit = str(res.dask_memory_limit)
    worker = _container(
        "worker", settings,
        args=["dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads",
              str(res.threads_per_worker), "--memory-limit", memory_limit,
              "--dashboard", "--dashboard-address", "8788"],
        ports=[{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
        resources=_resources(res.threads_per_worker, res.memory_per_worker,
                             res.gpus_per_worker, default.memory))
    scheduler = _container(
        "scheduler", settings, args=["dask", "scheduler"],
        ports=[{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
               {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"}],
        resources=_resources(default.cpu, default.memory))
    scheduler["readinessProbe"] = {"httpGet": {"port": "http-dashboard", "path": "/health"},
                                   "initialDelaySeconds": 5, "periodSeconds": 10}
    return {
        "job": {"metadata": {"labels": _labels(spec, job_id, attempt, "runner")},
                "spec": _pod_spec(settings, [runner], config_map=config_map,
                                  restart="Never", deadline=spec.spec.timeout)},
        # (the CRD has no cluster.metadata: the operator labels the cluster's pods with
        # the DaskJob's own labels)
        "cluster": {
            "spec": {
                "worker": {"replicas": res.workers, "spec": _pod_spec(settings, [worker])},
                "scheduler": {
                    "spec": _pod_spec(settings, [scheduler]),
                    "service": {
                        "type": "ClusterIP",
                        "selector": {"dask.org/cluster-name": name,
                                     "dask.org/component": "scheduler"},
                        "ports": [{"name": "tcp-comm", "protocol": "TCP", "port": 8786,
                                   "targetPort": "tcp-comm"},
                                  {"name": "http-dashboard", "protocol": "TCP", "port": 8787,
                                   "targetPort": "http-dashboard"}],
                    },
                },
            },
        },
    }


def _ray_job(spec: JobSpec, settings: KubernetesSettings, job_id: str, attempt: int,
             name: str, config_map: str) -> dict[str, Any]:
    scaling = spec.workload.scaling
    default = settings.pod_resources
    head = _container(
        "ray-head", settings, mounts_spec=True, resources=_resources(default.cpu, default.memory),
        ports=[{"name": "gcs", "containerPort": 6379, "protocol": "TCP"},
               {"name": "dashboard", "containerPort": 8265, "protocol": "TCP"},
               {"name": "client", "containerPort": 10001, "protocol": "TCP"}])
    worker = _container(
        "ray-worker", settings,
        resources=_resources(scaling.cpus_per_worker, spec.spec.resources.memory_per_worker,
                             1 if scaling.use_gpu else 0, default.memory))
    submitter = _container("ray-job-submitter", settings,
                           resources=_resources("200m", "512Mi"))
    runner = " ".join(shlex.quote(part) for part in
                      RUNNER_COMMAND + runner_args(job_id, attempt, ray_address="auto"))
    body: dict[str, Any] = {
        # the runner is the Ray job's driver, on the head (which mounts the ConfigMap)
        "entrypoint": f"cd {WORK_DIR} && {runner}",
        "submissionMode": "K8sJobMode",
        # one attempt per RayJob (KubeRay would retry bad input too): see the module docstring
        "backoffLimit": 0,
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": settings.ttl_after_finished,
        "submitterPodTemplate": {
            "metadata": {"labels": _labels(spec, job_id, attempt, "runner")},
            "spec": _pod_spec(settings, [submitter], restart="Never"),
        },
        "rayClusterSpec": {
            "rayVersion": settings.ray_version,
            "headGroupSpec": {
                # the head places and watches the training workers; it trains nothing
                "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                "template": {"metadata": {"labels": _labels(spec, job_id, attempt, "head")},
                             "spec": _pod_spec(settings, [head], config_map=config_map)},
            },
            "workerGroupSpecs": [{
                "groupName": "train",
                "replicas": scaling.workers, "minReplicas": scaling.workers,
                "maxReplicas": scaling.workers,
                "rayStartParams": {},
                "template": {"metadata": {"labels": _labels(spec, job_id, attempt, "worker")},
                             "spec": _pod_spec(settings, [worker])},
            }],
        },
    }
    if spec.spec.timeout:
        body["activeDeadlineSeconds"] = int(spec.spec.timeout)
    return body


_BUILDERS = {"Job": _python_job, "DaskJob": _dask_job, "RayJob": _ray_job}


def local_inputs(spec: JobSpec) -> list[str]:
    """The spec's fields that read a local path, as ``field: path``. In a job pod such a
    path names a file inside the image, which holds the package and ``jobs/`` only;
    outputs at local paths are fine (the runner keeps them with its results).

    Examples
    --------
    >>> from shipyard.spec import load
    >>> local_inputs(load({"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "a"},
    ...     "spec": {"python": {"entrypoint": "os.path:join", "params": {}}}}))
    []
    """
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{where}.{key}"
                if (key == "path" and isinstance(value, str) and "://" not in value
                        and "output" not in where):
                    found.append(f"{here}: {value}")
                else:
                    walk(value, here)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(spec.to_dict()["spec"], "spec")
    return found


def local_inputs_warning(spec: JobSpec) -> str | None:
    """One paragraph about :func:`local_inputs`, or None when there are none."""
    paths = local_inputs(spec)
    if not paths:
        return None
    return (f"{'; '.join(paths)}: a local path, which a Kubernetes pod reads inside the job "
            "image (it holds the package and jobs/ only); put the data in object storage "
            "(s3://, gs://, ...) and point the spec there, e.g. with --set")


def render(spec: JobSpec, settings: KubernetesSettings, job_id: str,
           attempt: int = 1) -> list[dict[str, Any]]:
    """The manifests of one attempt: the spec's ConfigMap, then the workload's resource.

    Parameters
    ----------
    spec : JobSpec
    settings : KubernetesSettings
        The cluster profile.
    job_id : str
    attempt : int
        DaskJobs and RayJobs have one resource per attempt; a Job retries itself.

    Returns
    -------
    list of dict
        ``[ConfigMap, Job | DaskJob | RayJob]``, ready for the API or ``yaml.safe_dump``.
    """
    kind = resource_kind(spec)
    api_version, _, _ = KINDS[kind]
    name = resource_name(job_id, attempt if kind in PER_ATTEMPT else 1)
    config_map = f"{name}-spec"
    storage = {"url": settings.storage.run_url(job_id), "options": settings.storage.options}
    config = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": _metadata(config_map, settings, _labels(spec, job_id, attempt), job_id),
        "data": {"spec.yaml": spec.to_yaml(), "storage.json": json.dumps(storage)},
    }
    resource = {
        "apiVersion": api_version, "kind": kind,
        "metadata": _metadata(name, settings, _labels(spec, job_id, attempt), job_id),
        "spec": _BUILDERS[kind](spec, settings, job_id, attempt, name, config_map),
    }
    return [config, resource]
