"""The Kubernetes manifests: what `shipyard render --cluster kubernetes` prints and the
backend creates, checked against the API's own schemas (kubernetes-validate --strict),
the operators' CRD schemas, the Pod Security "restricted" rules, and the spec they
came from. Also the job image's Dockerfile (hadolint) and the k8s/ kustomize base."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from helpers import ROOT, shipyard
from pod_security import pod_specs, violations
from shipyard.backends.kubernetes.render import (redirect_local_outputs, render, render_pipeline,
                                               resource_name)
from shipyard.backends.kubernetes.settings import kubernetes_settings
from shipyard.spec import load

K8S_VERSION = "1.33"
SHARED_CRDS = ROOT.parent / "shared" / "k8s-crds"
CATALOG = ["basics", "breast-cancer-grid", "churn-data", "diabetes-regression", "digits-cnn",
           "digits-halving", "digits-mlp", "sklearn-datasets", "wine-clustering", "wine-random"]

SETTINGS = kubernetes_settings("kubernetes", {
    "image": "registry.example.com/shipyard:0.1.0", "namespace": "ml-batch",
    "storage": {"url": "s3://lake/shipyard", "credentials_secret": "lake-credentials"},
    "image_pull_secrets": ["regcred"], "node_selector": {"pool": "batch"},
    "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
})


@functools.cache
def _crd_schema(path: Path, version: str = "v1") -> dict:
    """The CRD's schema, strict (see _strict), with the fields the API server checks
    itself (apiVersion, kind, metadata) that CRD schemas leave out."""
    # KubeRay's CRDs are megabytes of YAML: parsed once, with libyaml
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schema = _strict(next(v for v in crd["spec"]["versions"] if v["name"] == version)[
        "schema"]["openAPIV3Schema"])
    schema["properties"] = {**schema["properties"], "apiVersion": {"type": "string"},
                            "kind": {"type": "string"}, "metadata": {"type": "object"}}
    return schema


def _dask_crd(name: str) -> Path:
    import dask_kubernetes

    return (Path(dask_kubernetes.__file__).parent / "operator" / "deployment" / "helm" /
            "dask-kubernetes-operator" / "crds" / f"{name}.yaml")


def _strict(schema: dict) -> dict:
    """The CRD schema with unknown fields refused, as the API server prunes/rejects them
    (``additionalProperties: false`` wherever properties are listed and not preserved)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


def _check_custom(resource: dict) -> None:
    if resource["kind"] == "DaskJob":
        path = _dask_crd("daskjob")
    else:
        path = SHARED_CRDS / "ray.io_rayjobs.yaml"
        if not path.is_file():
            pytest.skip(f"{path} is absent (the KubeRay CRDs live in ../shared/k8s-crds)")
    jsonschema.validate(resource, _crd_schema(path))


@pytest.fixture(scope="module", autouse=True)
def catalog_data(tmp_path_factory):
    """The data the catalog's sklearn and torch specs read (data/sklearn/*.parquet, which
    jobs/sklearn-datasets.yaml writes), in a working directory of the module's own:
    loading a spec checks that its inputs exist."""
    from shipyard.ml.datasets import write_datasets

    folder = tmp_path_factory.mktemp("catalog")
    write_datasets(directory=str(folder / "data" / "sklearn"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield folder


def _manifests(name: str, overrides: tuple[str, ...] | list[str] = ()) -> list[dict]:
    spec = load(ROOT / "jobs" / f"{name}.yaml", overrides)
    return render(spec, SETTINGS, f"{name}-20261125-101500-ab12")


@pytest.fixture(scope="module")
def dataframe_spec(tmp_path_factory):
    folder = tmp_path_factory.mktemp("df")
    (folder / "customers.csv").write_text("id,age,city\n1,30,a\n2,,b\n")
    path = folder / "prep.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "prep"},
        "spec": {"resources": {"workers": 3, "threads_per_worker": 2,
                               "memory_per_worker": "3GiB", "gpus_per_worker": 1},
                 "retries": 2, "timeout": "20m",
                 "dataframe": {"inputs": {"main": {"path": str(folder / "customers.csv")}},
                               "steps": [{"fillna": {"age": "mean"}}],
                               "output": {"path": str(folder / "prep.parquet")}}}}))
    return load(path)


def _valid(manifest: dict, what: str) -> None:
    """Schema-valid (the API's, or the operator CRD's), and every pod restricted, with no
    service-account token and a valid PodSpec of its own."""
    if manifest["kind"] in ("ConfigMap", "Job"):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    else:
        _check_custom(manifest)
    for where, pod in pod_specs(manifest):
        assert violations(pod) == [], f"{what} {where}"
        assert pod["automountServiceAccountToken"] is False
        # each pod spec is a valid PodSpec as well (CRDs embed it loosely)
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod",
                                      "metadata": {"name": "p"}, "spec": pod},
                                     K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", CATALOG)
def test_catalog_manifests_pass_the_api_schemas_and_the_restricted_profile(name):
    config_map, resource = _manifests(name)
    for manifest in (config_map, resource):
        _valid(manifest, name)
    # the spec travels whole in the ConfigMap and loads back to the same spec (a
    # DaskJob's outputs at local paths moved to the object store: the workers write them)
    shipped = load(ROOT / "jobs" / f"{name}.yaml")
    expected = (redirect_local_outputs(shipped, SETTINGS, f"{name}-20261125-101500-ab12")[0]
                if resource["kind"] == "DaskJob" else shipped.to_dict())
    assert load(yaml.safe_load(config_map["data"]["spec.yaml"]),
                check_references=False).to_dict() == load(expected,
                                                          check_references=False).to_dict()
    storage = json.loads(config_map["data"]["storage.json"])
    assert storage["url"] == f"s3://lake/shipyard/runs/{name}-20261125-101500-ab12"
    for manifest in (config_map, resource):
        labels = manifest["metadata"]["labels"]
        assert all(len(v) <= 63 for v in labels.values())
        assert labels["shipyard.io/job-name"] == load(ROOT / "jobs" / f"{name}.yaml").name
        assert labels["shipyard.io/attempt"] == "1"
        assert manifest["metadata"]["annotations"]["shipyard.io/job-id"] == \
            f"{name}-20261125-101500-ab12"


def test_a_pipeline_renders_every_stage_reading_the_outputs_before_it_in_storage():
    """`shipyard render jobs/quickstart.yaml --cluster kubernetes` (issue 19: KeyError
    'pipeline'): each stage a job of its own, in order; a stage's ``${stages.X.output}``
    is where the cluster keeps X's output, not the local path X declares."""
    pipeline = load(ROOT / "jobs" / "quickstart.yaml", check_references=False)
    manifests = render_pipeline(pipeline, SETTINGS)
    resources = [m for m in manifests if m["kind"] != "ConfigMap"]
    assert [r["kind"] for r in resources] == ["Job", "DaskJob", "DaskJob", "RayJob"]
    for manifest in manifests:
        _valid(manifest, manifest["metadata"]["name"])
    specs = {m["metadata"]["labels"]["shipyard.io/stage"]: yaml.safe_load(m["data"]["spec.yaml"])
             for m in manifests if m["kind"] == "ConfigMap"}
    ids = {m["metadata"]["labels"]["shipyard.io/stage"]: m["metadata"]["annotations"][
        "shipyard.io/job-id"] for m in resources}
    data_dir = specs["data"]["spec"]["python"]["params"]["output_dir"]
    assert data_dir == f"s3://lake/shipyard/runs/{ids['data']}/outputs/data/quickstart"
    features = specs["features"]["spec"]["dataframe"]
    assert features["inputs"]["main"]["path"] == f"{data_dir}/customers.parquet"
    assert specs["models"]["spec"]["sklearn"]["input"]["path"] == \
        specs["network"]["spec"]["torch"]["data"]["path"] == features["output"]["path"]
    assert features["output"]["path"].startswith(f"s3://lake/shipyard/runs/{ids['features']}/")


def test_workloads_map_to_their_operators():
    assert _manifests("basics")[1]["kind"] == "Job"
    assert _manifests("breast-cancer-grid")[1]["kind"] == "DaskJob"
    assert _manifests("digits-cnn")[1]["kind"] == "RayJob"


def test_python_job_maps_retries_timeout_resources_and_ttl():
    spec = load(ROOT / "jobs" / "basics.yaml")
    job = _manifests("basics")[1]
    assert job["spec"]["backoffLimit"] == spec.spec.retries == 1
    pod = job["spec"]["template"]["spec"]
    assert pod["activeDeadlineSeconds"] == 600          # timeout: 10m, per attempt
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert pod["restartPolicy"] == "Never"
    runner = pod["containers"][0]
    # 2 workers x 1 thread x 2GiB: the LocalCluster the runner starts in the pod
    assert runner["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert runner["resources"]["limits"] == {"memory": "4Gi"}
    assert runner["command"] == ["python", "-m", "shipyard.runtime.runner"]
    assert runner["args"][runner["args"].index("--attempt") + 1] == "auto"
    rule = job["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    assert pod["nodeSelector"] == {"pool": "batch"}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert runner["envFrom"] == [{"secretRef": {"name": "lake-credentials"}}]


def test_dask_job_sizes_the_cluster_from_spec_resources(dataframe_spec):
    config_map, daskjob = render(dataframe_spec, SETTINGS, "prep-20261125-101500-ab12",
                                 attempt=2)
    _check_custom(daskjob)
    cluster = daskjob["spec"]["cluster"]["spec"]
    assert cluster["worker"]["replicas"] == 3
    worker = cluster["worker"]["spec"]["containers"][0]
    assert worker["resources"]["requests"] == {"cpu": "2", "memory": "3Gi", "nvidia.com/gpu": "1"}
    assert worker["resources"]["limits"] == {"memory": "3Gi", "nvidia.com/gpu": "1"}
    assert worker["args"][:2] == ["dask", "worker"] and "--nthreads" in worker["args"]
    runner = daskjob["spec"]["job"]["spec"]["containers"][0]
    assert "$(DASK_SCHEDULER_ADDRESS)" in runner["args"]
    assert runner["args"][runner["args"].index("--attempt") + 1] == "2"
    assert daskjob["spec"]["job"]["spec"]["activeDeadlineSeconds"] == 1200
    # one resource per attempt (DaskJob has no retries of its own)
    assert daskjob["metadata"]["name"] == resource_name("prep-20261125-101500-ab12", 2)
    assert daskjob["metadata"]["name"].endswith("-a2")
    assert config_map["metadata"]["name"] == daskjob["metadata"]["name"] + "-spec"
    assert cluster["scheduler"]["service"]["selector"]["dask.org/cluster-name"] == \
        daskjob["metadata"]["name"]
    # the runner waits for its scheduler as long as a pod may take to start (the
    # operator starts it first: tests/k8s_operators.py)
    timeout = runner["args"][runner["args"].index("--dask-connect-timeout") + 1]
    assert float(timeout) == SETTINGS.start_timeout == 600
    # every pod says its role (the operator copies the DaskJob's labels onto all of them)
    roles = {part: cluster[part]["metadata"]["labels"]["app.kubernetes.io/component"]
             for part in ("scheduler", "worker")}
    assert roles == {"scheduler": "scheduler", "worker": "worker"}
    assert daskjob["spec"]["job"]["metadata"]["labels"]["app.kubernetes.io/component"] == \
        "runner"


def test_dask_job_outputs_at_local_paths_go_to_the_object_store(dataframe_spec):
    """The workers write a DaskJob's output (to_parquet runs on them): a local path would
    be a path in each worker pod, out of the runner's reach and gone with the pods."""
    config_map, _ = render(dataframe_spec, SETTINGS, "prep-20261125-101500-ab12")
    output = yaml.safe_load(config_map["data"]["spec.yaml"])["spec"]["dataframe"]["output"]
    local = dataframe_spec.workload.output.path
    assert output["path"] == ("s3://lake/shipyard/runs/prep-20261125-101500-ab12/outputs/"
                              + local.lstrip("/"))
    assert output["storage_options"] == SETTINGS.storage.options
    # the input stays where it was (and is warned about: local_inputs_warning)
    inputs = yaml.safe_load(config_map["data"]["spec.yaml"])["spec"]["dataframe"]["inputs"]
    assert inputs["main"]["path"] == dataframe_spec.workload.inputs["main"].path


def test_ray_job_sizes_the_workers_from_torch_scaling():
    rayjob = _manifests("digits-cnn", overrides=["spec.torch.scaling.use_gpu=true",
                                                 "spec.torch.scaling.workers=4",
                                                 "spec.timeout=1h", "spec.retries=2"])[1]
    _check_custom(rayjob)
    group = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 4
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    # one attempt per RayJob: KubeRay's own retries would rerun bad input too
    assert rayjob["spec"]["backoffLimit"] == 0
    # KubeRay's deadline counts provisioning (up to start_timeout) besides the run; the
    # cluster goes as soon as the job ends, not ttl_after_finished later
    assert rayjob["spec"]["activeDeadlineSeconds"] == 3600 + SETTINGS.start_timeout
    assert rayjob["spec"]["shutdownAfterJobFinishes"] is True
    assert rayjob["spec"]["ttlSecondsAfterFinished"] == 0
    assert "--ray-address auto" in rayjob["spec"]["entrypoint"]
    assert "--attempt 1" in rayjob["spec"]["entrypoint"]
    # checkpoints where every worker pod reaches them (not the head's disk)
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in head["containers"][0]["env"]}
    assert env["SHIPYARD_TRAIN_STORAGE"] == "s3://lake/shipyard/train"
    # the head holds GCS, dashboard, raylet and the driver
    assert head["containers"][0]["resources"]["requests"]["memory"] == "4Gi"
    # the embedded cluster is a valid RayCluster too
    clusters = SHARED_CRDS / "ray.io_rayclusters.yaml"
    jsonschema.validate({"apiVersion": "ray.io/v1", "kind": "RayCluster",
                         "metadata": {"name": "c"}, "spec": rayjob["spec"]["rayClusterSpec"]},
                        _crd_schema(clusters))
    assert "shipyard.runtime.runner" in rayjob["spec"]["entrypoint"]


def test_jobs_that_ask_for_gpus_run_the_gpu_image_and_are_warned_about_without_one():
    from shipyard.backends.kubernetes.render import submission_warnings

    overrides = ["spec.torch.scaling.use_gpu=true"]
    spec = load(ROOT / "jobs" / "digits-cnn.yaml", overrides)
    assert any("gpu_image" in w and "NCCL" in w for w in submission_warnings(spec, SETTINGS))
    gpu = SETTINGS.model_copy(update={"gpu_image": "registry.example.com/shipyard:0.1.0-cu128"})
    assert not submission_warnings(spec, gpu)
    rayjob = render(spec, gpu, "digits-cnn-20261125-101500-ab12")[1]
    cluster = rayjob["spec"]["rayClusterSpec"]
    images = {cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["image"],
              cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["image"]}
    assert images == {"registry.example.com/shipyard:0.1.0-cu128"}
    cpu = render(load(ROOT / "jobs" / "digits-cnn.yaml"), gpu, "d-20261125-101500-ab12")[1]
    assert cpu["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"][
        "containers"][0]["image"] == SETTINGS.image
    assert not submission_warnings(load(ROOT / "jobs" / "digits-cnn.yaml"), SETTINGS)


def test_file_names_in_comments_and_docs_exist():
    """Comments and docs that name a file of the repository (`k8s/role.yaml` was renamed
    and stayed in three places) name one that exists."""
    import re

    # the kustomize base and the test modules (cluster/NAME.yaml, jobs/x.yaml are examples)
    named = re.compile(r"\b(k8s/[\w.-]+\.yaml|tests/[\w/.-]+\.py)\b")
    sources = [*ROOT.joinpath("lib").rglob("*.py"), *ROOT.joinpath("cluster").iterdir(),
               *ROOT.joinpath("k8s").iterdir(), ROOT / "README.md", ROOT / "Makefile"]
    missing = {(path.relative_to(ROOT).as_posix(), name)
               for path in sources if path.is_file()
               for name in named.findall(path.read_text(errors="replace"))
               if not (ROOT / name).exists()}
    assert not missing, missing


def test_resource_names_fit_every_derived_name():
    name = resource_name("a" * 63 + "-20261125-101500-ab12", attempt=12)
    # DaskJob derives <name>-scheduler (a Service: DNS-1035, 63); KubeRay appends more
    assert len(name) <= 40 and name[0].isalpha()
    assert resource_name("x-20261125-101500-ab12") != resource_name("x-20261125-101500-ab13")


def test_render_cli_prints_manifests_and_refuses_what_it_cannot_render(tmp_path, monkeypatch,
                                                                      catalog_data):
    home = tmp_path / "home"
    (home / "clusters").mkdir(parents=True)
    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    monkeypatch.chdir(ROOT)
    profile = home / "clusters" / "k8s.yaml"
    profile.write_text(yaml.safe_dump({"backend": "kubernetes", "image": "shipyard:test",
                                       "storage": {"url": "s3://b/p"}}))
    proc = shipyard("render", "jobs/basics.yaml", "--cluster", "k8s")
    assert proc.returncode == 0, proc.stderr
    docs = list(yaml.safe_load_all(proc.stdout))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Job"]
    assert "warning" not in proc.stderr  # basics reads no file
    monkeypatch.chdir(catalog_data)  # where the catalog's data/sklearn is
    sklearn = shipyard("render", str(ROOT / "jobs" / "wine-random.yaml"), "--cluster", "k8s")
    monkeypatch.chdir(ROOT)
    assert sklearn.returncode == 0 and list(yaml.safe_load_all(sklearn.stdout))
    assert "spec.sklearn.input.path: data/sklearn/wine.parquet: a local path" in sklearn.stderr
    local = shipyard("render", "jobs/basics.yaml", "--cluster", "local")
    assert local.returncode == 2 and "backend is local" in local.stderr
    profile.write_text(yaml.safe_dump({"backend": "kubernetes", "image": "shipyard:test",
                                       "storage": {"url": "/data/shipyard"}}))
    bad = shipyard("render", "jobs/basics.yaml", "--cluster", "k8s")
    assert bad.returncode == 2
    assert "storage.url" in bad.stderr and "object-store URL" in bad.stderr
    assert "Traceback" not in bad.stderr
    profile.write_text(yaml.safe_dump({"backend": "kubernetes", "storage": {"url": "s3://b"},
                                       "imagee": "x"}))
    typo = shipyard("render", "jobs/basics.yaml", "--cluster", "k8s")
    assert typo.returncode == 2 and "image" in typo.stderr


def test_the_documented_profile_is_valid():
    data = yaml.safe_load((ROOT / "cluster" / "kubernetes.yaml").read_text())
    assert data.pop("backend") == "kubernetes" and data.pop("name") == "kubernetes"
    kubernetes_settings("kubernetes", data)


# -- the job image ------------------------------------------------------------------------


def test_dockerfile_passes_hadolint_and_runs_unprivileged():
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent /
                                               "hadolint")
    dockerfile = ROOT / "cluster" / "Dockerfile"
    proc = subprocess.run([hadolint, "--failure-threshold", "info", str(dockerfile)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    final = dockerfile.read_text().split("\nFROM ")[-1]
    assert "\nUSER 10001:10001" in final            # the pods' runAsUser
    assert "COPY --from=build /opt/shipyard" in final
    for tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert tool not in final, f"{tool} in the final stage"


# -- the kustomize base ---------------------------------------------------------------------


def kustomize_resources() -> list[dict]:
    base = ROOT / "k8s"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((base / name).read_text()):
            if doc["kind"] != "Namespace":
                doc["metadata"].setdefault("namespace", kustomization["namespace"])
            docs.append(doc)
    return docs


def test_kustomize_base_is_valid_and_least_privilege():
    docs = kustomize_resources()
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ResourceQuota",
            "LimitRange"} <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    role = next(d for d in docs if d["kind"] == "Role")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"]
    job_account = next(d for d in docs if d["kind"] == "ServiceAccount"
                       and d["metadata"]["name"] == SETTINGS.service_account)
    assert job_account["automountServiceAccountToken"] is False
    namespace = next(d for d in docs if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    if shutil.which("kubectl"):  # the real kustomize, where it is installed
        proc = subprocess.run(["kubectl", "kustomize", str(ROOT / "k8s")], capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        assert len(list(yaml.safe_load_all(proc.stdout))) == len(docs)
