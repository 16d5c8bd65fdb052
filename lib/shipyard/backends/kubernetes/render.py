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

Every pod runs the image's ``python -m shipyard.runtime.runner`` (or Dask's / Ray's own
processes), meets the Pod Security "restricted" profile and mounts no service-account
token: no job pod talks to the Kubernetes API. A Job's ``retries`` are its
``backoffLimit`` (bad input, exit 2, fails it at once through its ``podFailurePolicy``);
DaskJobs have no retries and a RayJob's would rerun bad input, so for those two each
attempt is its own resource (``<name>-a2``, ...) that the backend creates.

``timeout`` counts from the start of the run, not of provisioning, for every kind: it is
the runner pod's ``activeDeadlineSeconds`` (a Job's, a DaskJob's). KubeRay's deadline
counts the Ray cluster's provisioning too (``rayjob_controller.go`` sets ``StartTime``
before creating the cluster), so a RayJob's is ``timeout + start_timeout`` (provisioning
longer than ``start_timeout`` fails the job anyway) and the backend stops a Ray job that
has run ``timeout``. Its Ray cluster, GPUs and all, goes as soon as it finishes
(``ttlSecondsAfterFinished: 0``; KubeRay's deadline deletes nothing by itself).
Kubernetes deletes finished Jobs after ``ttl_after_finished``; the backend deletes finished
DaskJobs and RayJobs once it has their results.

How the operators read these manifests is what ``tests/k8s_operators.py`` emulates,
citing their source: KubeRay puts the RayJob's ``entrypoint`` unquoted into its
submitter's ``bash -ce`` line, so the entrypoint is one plain command (no ``&&``,
``;`` or ``cd``: the runner's ``--workdir`` changes directory); the dask-kubernetes
controller creates the runner pod before its scheduler is up, so the runner waits for
the scheduler for up to ``start_timeout``.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from shipyard.core.home import RunDir
from shipyard.core.ids import JOB_ID_PATTERN, new_job_id
from shipyard.core.runner_cli import RUNNER_MODULE, runner_command
from shipyard.core.states import FailureKind
from shipyard.core.workloads import WORKLOADS, DataField, data_fields, workload
from shipyard.train.storage import TRAIN_STORAGE_ENV, TRAIN_STORAGE_OPTIONS_ENV
from shipyard.core.units import format_memory

if TYPE_CHECKING:
    from shipyard.backends.kubernetes.settings import KubernetesSettings
    from shipyard.spec import JobSpec
    from shipyard.spec.pipeline import PipelineSpec

__all__ = ["render", "resource_name", "resource_kind", "local_inputs", "local_inputs_warning",
           "redirect_local_outputs", "submission_warnings", "uses_gpus", "job_image",
           "train_storage_env", "KINDS", "PER_ATTEMPT", "LABEL_JOB", "LABEL_ATTEMPT",
           "LABEL_ROLE", "ANNOTATION_JOB_ID", "RUNNER_CONTAINER"]

#: workload -> (apiVersion, kind, plural) of the resource that runs it
KINDS = {
    "DaskJob": ("kubernetes.dask.org/v1", "DaskJob", "daskjobs"),
    "RayJob": ("ray.io/v1", "RayJob", "rayjobs"),
    "Job": ("batch/v1", "Job", "jobs"),
}

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
    return workload(spec.workload_name).resource


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
               mounts_spec: bool = False, image: str | None = None,
               env: dict[str, str] | None = None) -> dict[str, Any]:
    environment = {"PYTHONUNBUFFERED": "1", "HOME": WORK_DIR, **(env or {})}
    container: dict[str, Any] = {
        "name": name, "image": image or settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "env": [{"name": key, "value": value} for key, value in environment.items()],
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


def runner_args(job_id: str, attempt: int | str, **options: str) -> list[str]:
    """The runner's arguments in a job pod (after ``python -m shipyard.runtime.runner``):
    the spec from the ConfigMap, the run directory synced to the profile's object store
    (see :mod:`shipyard.core.run_storage`), and ``options`` (``dask_address=...``)."""
    command = runner_command("python", run_dir=RUN_DIR, job_id=job_id, attempt=attempt,
                             spec_file=f"{SPEC_DIR}/spec.yaml",
                             sync=f"{SPEC_DIR}/storage.json", **options)
    return command[len(RUNNER_COMMAND):]


RUNNER_COMMAND = ["python", "-m", RUNNER_MODULE]


# -- the three kinds -------------------------------------------------------------------------


def _python_job(spec: JobSpec, settings: KubernetesSettings, job_id: str, attempt: int,
                name: str, config_map: str) -> dict[str, Any]:
    res = spec.spec.resources
    memory = res.memory_per_worker * res.workers if res.memory_per_worker else None
    runner = _container(RUNNER_CONTAINER, settings, command=RUNNER_COMMAND,
                        args=runner_args(job_id, "auto"), mounts_spec=True,
                        image=job_image(spec, settings),
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
                                                  "values": [FailureKind.INPUT.exit_code]}},
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
    image = job_image(spec, settings)  # one image for the cluster: Dask's versions match
    runner = _container(RUNNER_CONTAINER, settings, command=RUNNER_COMMAND, image=image,
                        # the operator sets DASK_SCHEDULER_ADDRESS in the runner's env and
                        # creates the runner pod before the scheduler's (controller.py,
                        # daskjob_create_components): wait for it as long as a pod may
                        # take to start
                        args=runner_args(job_id, attempt,
                                         dask_address="$(DASK_SCHEDULER_ADDRESS)",
                                         dask_connect_timeout=str(settings.start_timeout)),
                        mounts_spec=True, resources=_resources(default.cpu, default.memory))
    memory_limit = str(res.dask_memory_limit)
    worker = _container(
        "worker", settings, image=image,
        args=["dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads",
              str(res.threads_per_worker), "--memory-limit", memory_limit,
              "--dashboard", "--dashboard-address", "8788"],
        ports=[{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
        resources=_resources(res.threads_per_worker, res.memory_per_worker,
                             res.gpus_per_worker, default.memory))
    scheduler = _container(
        "scheduler", settings, args=["dask", "scheduler"], image=image,
        ports=[{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
               {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"}],
        resources=_resources(default.cpu, default.memory))
    scheduler["readinessProbe"] = {"httpGet": {"port": "http-dashboard", "path": "/health"},
                                   "initialDelaySeconds": 5, "periodSeconds": 10}
    return {
        "job": {"metadata": {"labels": _labels(spec, job_id, attempt, "runner")},
                "spec": _pod_spec(settings, [runner], config_map=config_map,
                                  restart="Never", deadline=spec.spec.timeout)},
        # the operator labels the cluster's pods with the DaskJob's labels, updated with
        # these (controller.py, daskcluster_create_components): each pod says its role,
        # so a scheduler's or a worker's state is never taken for the runner's
        "cluster": {
            "spec": {
                "worker": {"replicas": res.workers,
                           "metadata": {"labels": _labels(spec, job_id, attempt, "worker")},
                           "spec": _pod_spec(settings, [worker])},
                "scheduler": {
                    "metadata": {"labels": _labels(spec, job_id, attempt, "scheduler")},
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


def uses_gpus(spec: JobSpec) -> bool:
    """Whether the spec's pods ask for GPUs (``use_gpu``, ``gpus_per_worker``)."""
    scaling = getattr(spec.workload, "scaling", None)
    return bool(spec.spec.resources.gpus_per_worker or (scaling and scaling.use_gpu))


def job_image(spec: JobSpec, settings: KubernetesSettings) -> str:
    """The image the job's pods run: the profile's ``gpu_image`` for a job that asks for
    GPUs (the default image's torch is a CPU build: cluster/Dockerfile), else ``image``."""
    return (settings.gpu_image or settings.image) if uses_gpus(spec) else settings.image


def train_storage_env(settings: KubernetesSettings) -> dict[str, str]:
    """Where Ray Train keeps checkpoints in a RayJob: ``<storage.url>/train``, with the
    storage's fsspec options (its endpoint, ...) for the filesystem Ray Train writes
    through. Every worker pod must reach it: Ray 2.60 refuses a path on the head
    (``train/v2/_internal/execution/storage.py``, ``_check_validation_file``)."""
    env = {TRAIN_STORAGE_ENV: f"{settings.storage.url}/train"}
    if settings.storage.options:
        env[TRAIN_STORAGE_OPTIONS_ENV] = json.dumps(settings.storage.options, sort_keys=True)
    return env


def _ray_job(spec: JobSpec, settings: KubernetesSettings, job_id: str, attempt: int,
             name: str, config_map: str) -> dict[str, Any]:
    scaling = spec.workload.scaling
    default = settings.pod_resources
    image = job_image(spec, settings)
    head_size = settings.ray_head_resources
    head = _container(
        "ray-head", settings, mounts_spec=True, image=image,
        resources=_resources(head_size.cpu, head_size.memory),
        env=train_storage_env(settings),
        ports=[{"name": "gcs", "containerPort": 6379, "protocol": "TCP"},
               {"name": "dashboard", "containerPort": 8265, "protocol": "TCP"},
               {"name": "client", "containerPort": 10001, "protocol": "TCP"}])
    worker = _container(
        "ray-worker", settings, image=image, env=train_storage_env(settings),
        resources=_resources(scaling.cpus_per_worker, spec.spec.resources.memory_per_worker,
                             1 if scaling.use_gpu else 0, default.memory))
    submitter = _container("ray-job-submitter", settings,
                           resources=_resources("200m", "512Mi"))
    # One plain command: KubeRay writes the entrypoint unquoted into its submitter's
    # `bash -ce` line (common/job.go, BuildJobSubmitCommand: "--", entrypoint, ";"), where
    # `cd /work && ...` would submit only the `cd` and run the runner in the submitter pod
    entrypoint = " ".join(shlex.quote(part) for part in RUNNER_COMMAND + runner_args(
        job_id, attempt, ray_address="auto", workdir=WORK_DIR))
    body: dict[str, Any] = {
        # the runner is the Ray job's driver, on the head (which mounts the ConfigMap)
        "entrypoint": entrypoint,
        "submissionMode": "K8sJobMode",
        # one attempt per RayJob (KubeRay would retry bad input too): see the module docstring
        "backoffLimit": 0,
        "shutdownAfterJobFinishes": True,
        # the Ray cluster (its GPUs) goes when the job ends; its results are in storage
        "ttlSecondsAfterFinished": 0,
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
        # KubeRay's clock starts before the cluster exists (see the module docstring)
        body["activeDeadlineSeconds"] = int(spec.spec.timeout) + settings.start_timeout
    return body


_BUILDERS = {"Job": _python_job, "DaskJob": _dask_job, "RayJob": _ray_job}


def _local_paths(document: dict[str, Any]) -> list[tuple[str, DataField]]:
    """``(spec field, the data field)`` for each path the spec document's workload
    declares (:func:`~shipyard.core.workloads.data_fields`) that names a local file
    (no ``scheme://``)."""
    body = document["spec"]
    name = next(w for w in WORKLOADS if w in body)
    return [(f"spec.{name}.{found.field}", found) for found in data_fields(name, body[name])
            if "://" not in found.path]


def local_inputs(spec: JobSpec) -> list[str]:
    """The spec's fields that read a local path, as ``field: path``. In a job pod such a
    path names a file inside the image, which holds the package and ``jobs/`` only.
    (Outputs at local paths are kept with the results: see :func:`redirect_local_outputs`.)

    Examples
    --------
    >>> from shipyard.spec import load
    >>> local_inputs(load({"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "a"},
    ...     "spec": {"python": {"entrypoint": "os.path:join", "params": {}}}}))
    []
    """
    return [f"{where}: {found.path}" for where, found in _local_paths(spec.to_dict())
            if not found.output]


def local_inputs_warning(spec: JobSpec) -> str | None:
    """One paragraph about :func:`local_inputs`, or None when there are none."""
    paths = local_inputs(spec)
    if not paths:
        return None
    return (f"{'; '.join(paths)}: a local path, which a Kubernetes pod reads inside the job "
            "image (it holds the package and jobs/ only); put the data in object storage "
            "(s3://, gs://, ...) and point the spec there, e.g. with --set")


def submission_warnings(spec: JobSpec, settings: KubernetesSettings) -> list[str]:
    """What ``render`` and ``submit`` warn about: inputs the pods cannot read
    (:func:`local_inputs_warning`), GPUs the image cannot use."""
    warnings = [local_inputs_warning(spec)]
    if uses_gpus(spec) and not settings.gpu_image:
        warnings.append(
            f"the job asks for GPUs and the profile sets no gpu_image: its image "
            f"{settings.image} has the CPU build of torch unless it was built from a CUDA "
            "wheel index (make image-gpu, cluster/Dockerfile), and training with use_gpu "
            "then fails when NCCL starts; set gpu_image in the profile to the CUDA build")
    return [w for w in warnings if w]


def redirect_local_outputs(spec: JobSpec, settings: KubernetesSettings,
                           job_id: str) -> tuple[dict[str, Any], list[str]]:
    """The spec document a DaskJob runs, with each output at a local path moved to
    ``<run url>/outputs/<path>`` (with the storage's options), and ``field: old -> new``
    for each. A DaskJob's outputs are written by its worker pods (``to_parquet`` runs
    there): a local path would land on their disks, out of the runner's reach and gone
    with the pods. The runner keeps a local output of the other kinds under the same
    ``outputs/`` (:mod:`shipyard.core.run_storage`), so results are found in one place.

    Examples
    --------
    >>> from shipyard.backends.kubernetes.settings import kubernetes_settings
    >>> from shipyard.spec import load
    >>> spec = load({"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "a"},
    ...     "spec": {"dataframe": {"inputs": {"main": {"path": "s3://lake/in.csv"}},
    ...                            "output": {"path": "out/clean.parquet"}}}},
    ...             check_references=False)
    >>> settings = kubernetes_settings("k", {"image": "i", "storage": {"url": "s3://b/x"}})
    >>> redirect_local_outputs(spec, settings, "a-1")[1]
    ['spec.dataframe.output.path: out/clean.parquet -> s3://b/x/runs/a-1/outputs/out/clean.parquet']
    """
    document = spec.to_dict()
    moved = []
    for where, found in _local_paths(document):
        if not found.output:
            continue
        block = found.holder
        target = kept_output(settings, job_id, block["path"])
        moved.append(f"{where}: {block['path']} -> {target}")
        block["path"] = target
        block["storage_options"] = {**settings.storage.options,
                                    **(block.get("storage_options") or {})}
    return document, moved


def kept_output(settings: KubernetesSettings, job_id: str, path: str) -> str:
    """Where job ``job_id``'s output ``path`` is kept: a local path under
    ``<run url>/outputs/`` (as written, without a leading ``/`` or ``..``: where the
    runner's ``upload_outputs`` puts it, and where a DaskJob writes it), an object-store
    URL where it is.

    Examples
    --------
    >>> from shipyard.backends.kubernetes.settings import kubernetes_settings
    >>> settings = kubernetes_settings("k", {"image": "i", "storage": {"url": "s3://b/x"}})
    >>> kept_output(settings, "a-1", "../out/clean.parquet")
    's3://b/x/runs/a-1/outputs/out/clean.parquet'
    >>> kept_output(settings, "a-1", "gs://lake/clean")
    'gs://lake/clean'
    """
    if "://" in path:
        return path
    parts = [p for p in PurePosixPath(path).parts if p not in ("/", ".", "..")]
    return f"{settings.storage.run_url(job_id)}/outputs/{'/'.join(parts)}"


def render_pipeline(pipeline: PipelineSpec, settings: KubernetesSettings,
                    code_digest: str | None = None) -> list[dict[str, Any]]:
    """Every stage's manifests, in the pipeline's order, as its driver would submit them
    (each stage a job with a fresh id): a stage that reads ``${stages.X.output}`` reads
    X's output where the cluster keeps it (:func:`kept_output`)."""
    from shipyard.spec.job import load_job
    from shipyard.spec.pipeline import stage_job_name

    ids = {name: new_job_id(stage_job_name(pipeline.name, name)) for name in pipeline.order}
    outputs = {name: None if declared is None else kept_output(settings, ids[name], declared)
               for name, declared in pipeline.outputs().items()}
    manifests = []
    for name in pipeline.order:
        stage = load_job(pipeline.stage_document(name, outputs=outputs), f"stage {name}",
                         pipeline.base_dir, check_references=False)
        manifests += render(stage, settings, ids[name], code_digest=code_digest)
    return manifests


def render(spec: JobSpec, settings: KubernetesSettings, job_id: str,
           attempt: int = 1, code_digest: str | None = None) -> list[dict[str, Any]]:
    """The manifests of one attempt: the spec's ConfigMap, then the workload's resource.

    Parameters
    ----------
    spec : JobSpec
    settings : KubernetesSettings
        The cluster profile.
    job_id : str
    attempt : int
        DaskJobs and RayJobs have one resource per attempt; a Job retries itself.
    code_digest : str, optional
        The job's code package, which the runner fetches from the profile's storage
        (``code/<digest>.zip``) and imports from.

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
    if code_digest is not None:
        storage["code"] = settings.storage.code_url(code_digest)
    document = (redirect_local_outputs(spec, settings, job_id)[0] if kind == "DaskJob"
                else spec.to_dict())
    config = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": _metadata(config_map, settings, _labels(spec, job_id, attempt), job_id),
        "data": {RunDir.SPEC: yaml.safe_dump(document, sort_keys=False),
                 "storage.json": json.dumps(storage)},
    }
    resource = {
        "apiVersion": api_version, "kind": kind,
        "metadata": _metadata(name, settings, _labels(spec, job_id, attempt), job_id),
        "spec": _BUILDERS[kind](spec, settings, job_id, attempt, name, config_map),
    }
    return [config, resource]
