"""The settings of a ``backend: kubernetes`` cluster profile, validated.

A profile (``cluster/kubernetes.yaml`` is the documented example)::

    name: kubernetes
    backend: kubernetes
    context: null              # kubeconfig context (default: the current one)
    kubeconfig: null           # default: $KUBECONFIG, ~/.kube/config, else in-cluster
    namespace: shipyard
    image: registry.example.com/shipyard:0.1.0
    gpu_image: null            # the image with CUDA torch, for jobs that ask for GPUs
    image_pull_policy: IfNotPresent
    image_pull_secrets: []     # names of Secrets of type kubernetes.io/dockerconfigjson
    service_account: shipyard-job
    storage:                   # where run directories (result.json, artifacts, logs) live
      url: s3://my-bucket/shipyard
      options: {}              # fsspec storage options, e.g. {endpoint_url: ...}
      credentials_secret: null # a Secret whose keys become the job pods' environment
    pod_resources: {cpu: "1", memory: 2Gi}   # pods the spec does not size (runner, scheduler)
    ray_head_resources: {cpu: "1", memory: 4Gi}  # the Ray head: GCS, dashboard, the driver
    node_selector: {}
    tolerations: []
    ttl_after_finished: 1h     # finished resources are deleted by Kubernetes after this
    start_timeout: 10m         # a pod that cannot start (image, scheduling) for this long fails the job
    ray_version: "2.60.0"      # the Ray in the image, for KubeRay

Pods cannot see this machine's disk, so ``storage.url`` must be an object-store URL
(``s3://``, ``gs://``, ``abfs://``, ...): a local path is refused with that reason.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from shipyard.core.model import StrictModel
from shipyard.spec.errors import validated_settings
from shipyard.core.units import parse_duration

__all__ = ["KubernetesSettings", "StorageSettings", "kubernetes_settings"]

#: fsspec protocols that only this machine can see.
_LOCAL_PROTOCOLS = {"", "file", "local", "memory"}

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P|E|Ei)?$")

Seconds = Annotated[int, BeforeValidator(lambda value: int(parse_duration(value)))]


class StorageSettings(StrictModel):
    """``storage``: the object store that holds the run directories of Kubernetes jobs."""

    url: str
    options: dict[str, Any] = Field(default_factory=dict)
    credentials_secret: str | None = None

    @field_validator("url")
    @classmethod
    def _object_store(cls, url: str) -> str:
        protocol = url.split("://", 1)[0] if "://" in url else ""
        if protocol in _LOCAL_PROTOCOLS:
            raise ValueError(
                f"must be an object-store URL such as s3://bucket/shipyard or "
                f"gs://bucket/shipyard, got {url!r}: job pods cannot see this machine's "
                "disk, so results written there would be lost")
        return url.rstrip("/")

    def run_url(self, job_id: str) -> str:
        """Where the run directory of job ``job_id`` lives."""
        return f"{self.url}/runs/{job_id}"

    def code_url(self, digest: str) -> str:
        """Where the code package ``digest`` lives (one copy for every job that ships it)."""
        return f"{self.url}/code/{digest}.zip"


class PodResources(StrictModel):
    """Requests (and the memory limit) of the pods the job spec does not size."""

    cpu: str = "1"
    memory: str = "2Gi"

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> str:
        text = str(value)
        if not _QUANTITY.match(text):
            raise ValueError(f"must be a Kubernetes quantity such as 500m, 2 or 4Gi, got {value!r}")
        return text


class KubernetesSettings(StrictModel):
    """A validated ``backend: kubernetes`` profile (see the module docstring)."""

    context: str | None = None
    kubeconfig: str | None = None
    namespace: str = "shipyard"
    image: str
    gpu_image: str | None = None
    image_pull_policy: str = Field("IfNotPresent", pattern="^(Always|IfNotPresent|Never)$")
    image_pull_secrets: list[str] = Field(default_factory=list)
    service_account: str = "shipyard-job"
    storage: StorageSettings
    pod_resources: PodResources = Field(default_factory=PodResources)
    #: the head holds Ray's GCS, dashboard and raylet and the torch driver: 2Gi is tight
    ray_head_resources: PodResources = Field(default_factory=lambda: PodResources(memory="4Gi"))
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    ttl_after_finished: Seconds = 3600
    start_timeout: Seconds = 600
    ray_version: str = "2.60.0"


def kubernetes_settings(name: str, settings: dict[str, Any]) -> KubernetesSettings:
    """The profile's settings, validated.

    Raises
    ------
    UsageError
        Naming each wrong field of the profile (exit 2).

    Examples
    --------
    >>> kubernetes_settings("k", {"image": "shipyard:0.1", "storage": {"url": "s3://b/x/"}}
    ...                     ).storage.run_url("j-1")
    's3://b/x/runs/j-1'
    """
    return validated_settings(KubernetesSettings, settings,
                              f"cluster profile {name!r} (backend kubernetes) is not valid")
