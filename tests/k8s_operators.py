"""The operators of shipyard's Kubernetes path, emulated from their source, for tests.

The API server is kmock's (tests/k8s_emulator.py); what the controllers do with the
objects shipyard creates is done here, through the same API, as their source does it:

- :class:`DaskOperator` - the dask-kubernetes **2026.3.0** controller
  (``dask_kubernetes/operator/controller/controller.py``, as installed). It builds the
  runner, scheduler and worker pods with the controller's own ``build_*`` functions
  (so their labels and env are the controller's, not a copy of them), merges labels as
  its handlers do, and creates the pods in its order: the runner pod before any pod of
  the cluster.
- :class:`KubeRayOperator` - the KubeRay **v1.7.0** RayJob controller in ``K8sJobMode``
  (``ray-operator/controllers/ray/rayjob_controller.go`` and ``common/job.go``). Its
  submitter runs the script ``BuildJobSubmitCommand`` builds under a real
  ``/bin/bash -ce``, with a stub ``ray`` command (:data:`RAY_STUB`) that hands the
  submitted entrypoint, joined as Ray's CLI joins it, to the emulated head, which runs it
  with ``/bin/sh -c`` as Ray's job supervisor does. An entrypoint that the submitter's
  shell splits is caught: the part after ``&&`` runs in the submitter pod.
- :class:`Kubelet` - how a container's command becomes a process here: ``$(VAR)``
  references expanded from its env, the pod's volumes as folders of its own, the
  cluster's service names resolved to loopback addresses.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dask_kubernetes.operator.controller import controller as dask_controller

__all__ = ["DaskOperator", "DaskJobPods", "KubeRayOperator", "Kubelet", "RAY_STUB"]


def _plain(api, obj) -> dict:
    return api.api_client.sanitize_for_serialization(obj)


# -- the kubelet ------------------------------------------------------------------------


@dataclass
class Kubelet:
    """Runs a pod's container here.

    Parameters
    ----------
    root : Path
        Each pod gets ``root/<pod>/<volume path>`` folders for its mounts.
    services : dict
        ``{"name.ns.svc.cluster.local:port": "127.0.0.1:port"}``: cluster DNS.
    environ : dict
        What the image's environment adds (PATH, PYTHONPATH, credentials from envFrom).
    """

    root: Path
    services: dict[str, str] = field(default_factory=dict)
    environ: dict[str, str] = field(default_factory=dict)

    def mounts(self, pod: str, container: dict, files: dict[str, dict[str, str]]
               ) -> dict[str, str]:
        """``{mount path: folder here}`` for the container's volume mounts, with ``files``
        (``{mount path: {name: text}}``, a ConfigMap's keys) written into them."""
        mounts = {}
        for mount in container.get("volumeMounts") or []:
            folder = self.root / pod / mount["mountPath"].strip("/").replace("/", "-")
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in files.get(mount["mountPath"], {}).items():
                (folder / name).write_text(text)
            mounts[mount["mountPath"]] = str(folder)
        return mounts

    def env(self, container: dict, mounts: dict[str, str]) -> dict[str, str]:
        """The container's environment: the image's, then its ``env`` (each value with
        ``$(VAR)`` expanded from the ones before it, as the kubelet does)."""
        env = {**self.environ}
        for item in container.get("env") or []:
            env[item["name"]] = self.local(_expand(item.get("value", ""), env), mounts)
        return env

    def local(self, text: str, mounts: dict[str, str]) -> str:
        """``text`` with the container's paths and the cluster's names as they are here."""
        for path, folder in sorted(mounts.items(), key=lambda m: -len(m[0])):
            text = text.replace(path, folder)
        for name, address in self.services.items():
            text = text.replace(name, address)
        return text

    def command(self, container: dict, mounts: dict[str, str]) -> list[str]:
        """The process a container runs: ``command + args``, ``$(VAR)`` expanded."""
        env = self.env(container, mounts)
        argv = [*container.get("command", []), *container.get("args", [])]
        argv = [self.local(_expand(a, env), mounts) for a in argv]
        if argv and argv[0] == "python":
            argv[0] = sys.executable  # the image's python: this environment's
        return argv


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in a container's args and env values (an unknown
    variable is left as written; ``$$`` escapes)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and ")" in text[i:]:
            end = text.index(")", i)
            name = text[i + 2:end]
            out.append(env.get(name, text[i:end + 1]))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# -- what both controllers do through the API ----------------------------------------------


class _Controller:
    """A controller's hands on the API: its custom resource (``GROUP``/``VERSION``/
    ``PLURAL``), that resource's status, and the pods it creates."""

    GROUP: str
    VERSION: str
    PLURAL: str

    def __init__(self, core, custom, namespace: str):
        self.core, self.custom, self.namespace = core, custom, namespace

    def _job(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object(self.GROUP, self.VERSION,
                                                        self.namespace, self.PLURAL, name)

    def _status(self, name: str, status: dict) -> None:
        self.custom.patch_namespaced_custom_object_status(
            self.GROUP, self.VERSION, self.namespace, self.PLURAL, name, {"status": status})

    def _pod(self, name: str, template: dict, phase: str = "Pending") -> str:
        """Create pod ``name`` from a pod template (its metadata and spec)."""
        self.core.create_namespaced_pod(self.namespace, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {**(template.get("metadata") or {}), "name": name},
            "spec": template["spec"], "status": {"phase": phase}})
        return name


# -- dask-kubernetes ----------------------------------------------------------------------


@dataclass
class DaskJobPods:
    """The pods the operator created for one DaskJob, by name."""

    runner: str
    scheduler: str
    workers: list[str]


class DaskOperator(_Controller):
    """The dask-kubernetes 2026.3.0 controller for DaskJobs, driven step by step.

    Parameters
    ----------
    core, custom : kubernetes client APIs (CoreV1Api, CustomObjectsApi)
    namespace : str
    """

    GROUP, VERSION, PLURAL = "kubernetes.dask.org", "v1", "daskjobs"

    def create_components(self, name: str) -> DaskJobPods:
        """What the operator does for a new DaskJob, in its order."""
        job = self._job(name)
        meta, spec = job["metadata"], job["spec"]
        # daskjob_create (controller.py:749-760)
        self._status(name, {"jobStatus": "JobCreated"})
        # daskjob_create_components (763-822): the cluster's labels are the DaskJob's
        # (_get_labels, 70-77: no namespace is ignored, l.40) updated with
        # spec.cluster.metadata's ...
        cluster_labels = dict(meta.get("labels") or {})
        cluster_labels.update((spec["cluster"].get("metadata") or {}).get("labels") or {})
        annotations = dict(meta.get("annotations") or {})
        cluster = dask_controller.build_cluster_spec(
            name, spec["cluster"]["spec"]["worker"], spec["cluster"]["spec"]["scheduler"],
            annotations, cluster_labels)
        # ... and the runner pod's are the DaskJob's updated with spec.job.metadata's; it
        # is created right after the DaskCluster object, before any pod of the cluster
        runner_labels = dict(meta.get("labels") or {})
        runner_labels.update((spec["job"].get("metadata") or {}).get("labels") or {})
        runner_pod = dask_controller.build_job_pod_spec(
            job_name=name, cluster_name=name, namespace=self.namespace,
            spec=spec["job"]["spec"], annotations=annotations, labels=runner_labels)
        runner = self._pod(runner_pod["metadata"]["name"], runner_pod)
        self._status(name, {"jobStatus": "ClusterCreated", "clusterName": name,
                            "jobRunnerPodName": runner})
        # daskcluster_create (316-337) sets the cluster's phase Created, on which
        # daskcluster_create_components (340-400) creates the scheduler Deployment (whose
        # ReplicaSet makes the pod), its Service, and the default worker group; the
        # cluster's labels, updated with spec.scheduler.metadata / spec.worker.metadata
        cluster_meta = cluster["metadata"]
        scheduler_spec = cluster["spec"]["scheduler"]
        labels = dict(cluster_meta["labels"])
        labels.update((scheduler_spec.get("metadata") or {}).get("labels") or {})
        deployment = dask_controller.build_scheduler_deployment_spec(
            name, scheduler_spec.get("spec"), annotations, labels)
        scheduler = self._pod(f"{deployment['metadata']['name']}-{_pod_suffix()}",
                              deployment["spec"]["template"])
        worker_spec = cluster["spec"]["worker"]
        labels = dict(cluster_meta["labels"])
        labels.update((worker_spec.get("metadata") or {}).get("labels") or {})
        group = dask_controller.build_default_worker_group_spec(name, worker_spec,
                                                                annotations, labels)
        workers = []
        # daskworkergroup_replica_update (644-736): one Deployment per worker, labelled
        # with the worker group's labels (updated with its worker.metadata again)
        group_labels = dict(group["metadata"]["labels"])
        group_labels.update((worker_spec.get("metadata") or {}).get("labels") or {})
        for _ in range(worker_spec.get("replicas", 1)):
            deployment = dask_controller.build_worker_deployment_spec(
                group["metadata"]["name"], self.namespace, name, uuid.uuid4().hex[:10],
                worker_spec["spec"], annotations, group_labels)
            workers.append(self._pod(f"{deployment['metadata']['name']}-{_pod_suffix()}",
                                     deployment["spec"]["template"]))
        return DaskJobPods(runner, scheduler, workers)

    def pod(self, name: str) -> dict:
        return _plain(self.core, self.core.read_namespaced_pod(name, self.namespace))

    def set_pod(self, name: str, **status: Any) -> None:
        """The kubelet's report on a pod (phase, conditions, containerStatuses)."""
        self.core.patch_namespaced_pod_status(name, self.namespace, {"status": status})

    def runner_phase(self, job: str, pods: DaskJobPods, phase: str, exit_code: int = 0) -> None:
        """The runner pod reaches ``phase``, and the operator acts on it:
        handle_runner_status_change_running (controller.py:827-848) marks the DaskJob
        Running; ..._succeeded / ..._failed (851-900) delete the DaskCluster, whose
        scheduler and workers are killed (SIGTERM: exit 143, as the API shows them while
        they go), and mark the DaskJob Successful / Failed."""
        status: dict[str, Any] = {"phase": phase}
        if phase in ("Succeeded", "Failed"):
            status["containerStatuses"] = [_terminated("runner", exit_code)]
        elif phase == "Running":
            status["containerStatuses"] = [{"name": "runner", "ready": True, "restartCount": 0,
                                            "image": "", "imageID": "",
                                            "state": {"running": {}}}]
        self.set_pod(pods.runner, **status)
        if phase == "Running":
            self._status(job, {"jobStatus": "Running"})
            return
        for pod in [pods.scheduler, *pods.workers]:
            container = "scheduler" if pod == pods.scheduler else "worker"
            self.set_pod(pod, phase="Failed", containerStatuses=[_terminated(container, 143)])
        self._status(job, {"jobStatus": "Successful" if phase == "Succeeded" else "Failed"})


def _terminated(container: str, code: int) -> dict:
    return {"name": container, "ready": False, "restartCount": 0, "image": "", "imageID": "",
            "state": {"terminated": {"exitCode": code,
                                     "reason": "Completed" if code == 0 else "Error"}}}


def _pod_suffix() -> str:
    # a ReplicaSet's pod-template-hash and the pod's own random suffix
    letters = string.ascii_lowercase + string.digits
    return "".join(random.choices(letters, k=10)) + "-" + "".join(random.choices(letters, k=5))


# -- KubeRay ----------------------------------------------------------------------------------

#: The `ray` command on the submitter's PATH. `job submit` joins the entrypoint's words as
#: Ray's CLI does (ray/dashboard/modules/job/cli.py: ``list2cmdline(entrypoint)``) and runs
#: it on the emulated head with ``/bin/sh -c`` (job_supervisor.py: ``Popen(entrypoint,
#: shell=True)``), in the head's filesystem and environment; `job status` answers whether
#: the submission id is known; `job logs --follow` prints the job's output once it ended.
#: (Real `submit --no-wait` returns at once and `logs --follow` waits for the end; run
#: in that order, the outcome is the same.)
RAY_STUB = textwrap.dedent('''\
    import json, os, subprocess, sys
    from pathlib import Path
    from subprocess import list2cmdline

    head = json.loads(Path(os.environ["EMULATED_RAY_HEAD"]).read_text())
    jobs = Path(head["jobs"])
    args = sys.argv[1:]
    if args[:2] == ["job", "status"]:
        sys.exit(0 if (jobs / args[-1]).is_dir() else 1)
    if args[:2] == ["job", "logs"]:
        job = jobs / args[-1]
        sys.stdout.write((job / "log").read_text() if job.is_dir() else "")
        sys.exit(0 if job.is_dir() else 1)
    if args[:2] == ["job", "submit"]:
        split = args.index("--")
        options, words = args[2:split], args[split + 1:]
        sid = options[options.index("--submission-id") + 1]
        entrypoint = list2cmdline(words)
        # the submitter's paths are its own; the head's are the head's
        for path, local in head["submitter_mounts"].items():
            entrypoint = entrypoint.replace(local, path)
        for path, local in sorted(head["mounts"].items(), key=lambda m: -len(m[0])):
            entrypoint = entrypoint.replace(path, local)
        job = jobs / sid
        job.mkdir(parents=True)
        (job / "entrypoint").write_text(entrypoint)
        with open(job / "log", "w") as log:
            code = subprocess.call(["/bin/sh", "-c", entrypoint], cwd=head["cwd"],
                                   env=head["env"], stdout=log, stderr=subprocess.STDOUT)
        (job / "status").write_text("SUCCEEDED" if code == 0 else "FAILED")
        print(f"Job '{sid}' submitted successfully")
        sys.exit(0)
    sys.exit(f"ray stub: unknown command {args}")
''')


@dataclass
class RayJobRun:
    """What the emulated KubeRay saw of one RayJob."""

    job_id: str
    head: str
    workers: list[str]
    submitters: list[str] = field(default_factory=list)
    #: the submitter's exit code, per pod
    exits: list[int] = field(default_factory=list)


class KubeRayOperator(_Controller):
    """The KubeRay v1.7.0 RayJob controller in K8sJobMode, driven step by step.

    Parameters
    ----------
    core, custom : kubernetes client APIs
    namespace : str
    kubelet : Kubelet
        Runs the submitter pods' command and the head's job entrypoint here.
    dashboard : str
        ``host:port`` of a Ray dashboard that answers ``/api/gcs_healthz`` (the
        submitter's wait loop asks it).
    head_environ : dict
        What the head adds to its container's env (``RAY_ADDRESS`` of the Ray cluster
        its driver joins).
    logs : dict
        ``{(namespace, pod): text}``: where the submitter pods' logs go (the emulator's).
    """

    GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
    #: rayjob_controller.go:718 (submitterConfig.backoffLimit unset)
    SUBMITTER_BACKOFF_LIMIT = 2

    def __init__(self, core, custom, namespace: str, kubelet: Kubelet, dashboard: str,
                 head_environ: dict[str, str], logs: dict[tuple[str, str], str]):
        super().__init__(core, custom, namespace)
        self.kubelet, self.dashboard, self.head_environ = kubelet, dashboard, head_environ
        self.logs = logs
        self.runs: dict[str, RayJobRun] = {}

    def provision(self, name: str) -> RayJobRun:
        """A new RayJob: its job id and start time (rayjob_controller.go:883-916, the
        deadline's clock starts here), then its RayCluster's head and worker pods."""
        job = self._job(name)
        cluster = job["spec"]["rayClusterSpec"]
        # utils/util.go:374 GenerateRayJobId: "<name>-<5 random characters>"
        job_id = f"{name}-{''.join(random.choices(string.ascii_lowercase, k=5))}"
        self._status(name, {"jobId": job_id, "jobDeploymentStatus": "Initializing",
                            "startTime": "2026-12-07T00:00:00Z"})
        head = self._pod(f"{name}-head-{_pod_suffix()[-5:]}",
                         cluster["headGroupSpec"]["template"])
        workers = [self._pod(f"{name}-{group['groupName']}-worker-{_pod_suffix()[-5:]}",
                             group["template"])
                   for group in cluster["workerGroupSpecs"] for _ in range(group["replicas"])]
        self.runs[name] = RayJobRun(job_id, head, workers)
        return self.runs[name]

    def submit(self, name: str, root: Path) -> RayJobRun:
        """The cluster is ready: the RayJob is Running with its dashboard URL (l.222) and
        the submitter Job runs (l.700-760), retried up to its backoffLimit, each pod running
        ``/bin/bash -ce -- <BuildJobSubmitCommand joined by spaces>`` (l.634-647,
        utils/util.go:1005 GetContainerCommand), with PYTHONUNBUFFERED,
        RAY_DASHBOARD_ADDRESS and RAY_JOB_SUBMISSION_ID in its env (l.650-656). Then the
        RayJob's status from the Ray job's (l.296-356) or from the failed submitter
        (l.1136-1162), and the cluster's deletion (l.420-447)."""
        job, run = self._job(name), self.runs[name]
        for pod in [run.head, *run.workers]:
            self.core.patch_namespaced_pod_status(pod, self.namespace,
                                                  {"status": {"phase": "Running"}})
        self._status(name, {"jobDeploymentStatus": "Running", "dashboardURL": self.dashboard})
        spec = job["spec"]
        head_pod = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
        head_container = head_pod["containers"][0]
        config_map = self.core.read_namespaced_config_map(
            head_pod["volumes"][1]["configMap"]["name"], self.namespace).data
        head_mounts = self.kubelet.mounts(run.head, head_container, {"/etc/shipyard": config_map})
        jobs = root / "ray-jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        head_env = {**self.kubelet.env(head_container, head_mounts), **self.head_environ}
        script = " ".join(build_job_submit_command(spec, run.job_id, self.dashboard))
        template = spec["submitterPodTemplate"]
        container = template["spec"]["containers"][0]
        bin_dir = root / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / "ray").write_text(f"#!{sys.executable}\n{RAY_STUB}")
        (bin_dir / "ray").chmod(0o755)
        for attempt in range(self.SUBMITTER_BACKOFF_LIMIT + 1):
            pod = self._pod(f"{name}-{_pod_suffix()[-5:]}", template, phase="Running")
            run.submitters.append(pod)
            mounts = self.kubelet.mounts(pod, {"volumeMounts": container.get(
                "volumeMounts") or []}, {})
            env = {**self.kubelet.env(container, mounts), "PYTHONUNBUFFERED": "1",
                   "RAY_DASHBOARD_ADDRESS": self.dashboard, "RAY_JOB_SUBMISSION_ID": run.job_id}
            env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', os.environ['PATH'])}"
            head_file = root / f"{pod}-head.json"
            head_file.write_text(json.dumps({
                "jobs": str(jobs), "mounts": head_mounts, "env": head_env,
                "cwd": head_mounts.get(head_container.get("workingDir", ""), str(root)),
                "submitter_mounts": mounts}))
            env["EMULATED_RAY_HEAD"] = str(head_file)
            proc = subprocess.run(["/bin/bash", "-ce", "--", self.kubelet.local(script, mounts)],
                                  env=env, cwd=mounts.get("/work", str(root)),
                                  capture_output=True, text=True, timeout=600)
            self.logs[(self.namespace, pod)] = proc.stdout + proc.stderr
            run.exits.append(proc.returncode)
            self.core.patch_namespaced_pod_status(pod, self.namespace, {"status": {
                "phase": "Succeeded" if proc.returncode == 0 else "Failed",
                "containerStatuses": [_terminated(container["name"], proc.returncode)]}})
            if proc.returncode == 0:
                break
        ray_job = jobs / run.job_id
        ray_status = (ray_job / "status").read_text() if ray_job.is_dir() else None
        if ray_status is None:
            status = {"jobDeploymentStatus": "Failed", "reason": "AppFailed",
                      "message": "Submitter completed but Ray job not found in RayCluster."}
        elif run.exits[-1] != 0 and ray_status != "FAILED":
            status = {"jobDeploymentStatus": "Failed", "jobStatus": ray_status,
                      "reason": "SubmissionFailed", "message": "Job submission has failed."}
        else:
            status = {"jobStatus": ray_status,
                      "jobDeploymentStatus": "Complete" if ray_status == "SUCCEEDED" else "Failed",
                      **({"reason": "AppFailed"} if ray_status == "FAILED" else {})}
        self._status(name, {**status, "endTime": "2026-12-07T00:00:01Z"})
        self._finished(name)
        return run

    def pass_deadline(self, name: str) -> None:
        """activeDeadlineSeconds has passed since the start time:
        checkActiveDeadlineAndUpdateStatusIfNeeded (l.1234-1244) marks the RayJob Failed
        with reason DeadlineExceeded and nothing else; the cluster goes as any finished
        RayJob's does."""
        job = self._job(name)
        assert "activeDeadlineSeconds" in job["spec"], "the RayJob has no deadline"
        self._status(name, {"jobDeploymentStatus": "Failed", "reason": "DeadlineExceeded",
                            "message": "The RayJob has passed the activeDeadlineSeconds.",
                            "endTime": "2026-12-07T00:00:01Z"})
        self._finished(name)

    def _finished(self, name: str) -> None:
        """A RayJob Complete or Failed with shutdownAfterJobFinishes (l.420-447): its
        RayCluster (head and worker pods) is deleted once ttlSecondsAfterFinished has
        passed since its end time (handleShutdownAfterJobFinishes, l.1515-1555). With a
        TTL of 0 that is now; a longer one keeps the pods (the emulated clock does not
        move on)."""
        spec = self._job(name)["spec"]
        if not spec.get("shutdownAfterJobFinishes") or spec.get("ttlSecondsAfterFinished", 0):
            return
        run = self.runs[name]
        for pod in [run.head, *run.workers]:
            self.core.delete_namespaced_pod(pod, self.namespace)


def build_job_submit_command(spec: dict, job_id: str, dashboard_url: str) -> list[str]:
    """The submitter's script as KubeRay v1.7.0 builds it in K8sJobMode
    (ray-operator/controllers/ray/common/job.go:90-215, BuildJobSubmitCommand): a wait
    for the dashboard's GCS health (l.148-160, utils/constant.go:335-343), then
    ``ray job status`` (submitted already?), ``ray job submit --no-wait`` and
    ``ray job logs --follow``, the entrypoint trimmed and **unquoted** after ``--``
    (l.204)."""
    address = dashboard_url if dashboard_url.startswith("http://") else f"http://{dashboard_url}"
    health = (f"python -c \"import urllib.request; r=urllib.request.urlopen("
              f"'{address}/api/gcs_healthz', timeout=10); "
              "exit(0 if b'success' in r.read() else 1)\"")
    cmd = ["until", health, ">/dev/null", "2>&1", ";", "do", "echo",
           json.dumps(f"Waiting for Ray Dashboard GCS to become healthy at {address} ..."),
           ";", "sleep", "2", ";", "done", ";"]
    cmd += ["if", "!", "ray", "job", "status", "--address", address, job_id, ">/dev/null",
            "2>&1", ";", "then"]
    cmd += ["ray", "job", "submit", "--address", address, "--no-wait"]
    if spec.get("runtimeEnvYAML"):
        raise NotImplementedError("runtimeEnvYAML: shipyard sets none")
    if spec.get("metadata"):
        raise NotImplementedError("metadata: shipyard sets none")
    cmd += ["--submission-id", job_id]
    for key, flag in (("entrypointNumCpus", "--entrypoint-num-cpus"),
                      ("entrypointNumGpus", "--entrypoint-num-gpus")):
        if spec.get(key):
            cmd += [flag, f"{float(spec[key]):f}"]
    cmd += ["--", spec["entrypoint"].strip(), ";", "fi", ";"]
    cmd += ["ray", "job", "logs", "--address", address, "--follow", job_id]
    return cmd

