"""The Kubernetes API client of the ``kubernetes`` backend: credentials found as kubectl
finds them, requests that are bounded and retried, and errors that say what to fix.

- Credentials: the profile's ``kubeconfig``/``context``, ``$KUBECONFIG``,
  ``~/.kube/config``, else the pod's in-cluster service account.
- Each request has a timeout; 429 and 5xx answers and dropped connections are retried
  (doubling waits, a ``Retry-After`` honoured up to a bound), then reported as a
  :class:`~shipyard.core.errors.ClusterError` (exit 3); 403 names the Role the
  submitting account needs (``k8s/submitter-role.yaml``).
- A Job goes through ``BatchV1Api``, a DaskJob or RayJob through ``CustomObjectsApi``;
  :meth:`KubernetesClient.resources` gives the same calls for either.

What the answers mean for a job is the backend's (:mod:`.backend`), not the client's.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from shipyard import __version__
from shipyard.backends.kubernetes.render import KINDS
from shipyard.core.errors import ClusterError, UsageError

if TYPE_CHECKING:
    from shipyard.backends.kubernetes.settings import KubernetesSettings

__all__ = ["KubernetesClient", "ResourceCalls"]

_TRANSIENT = {429, 500, 502, 503, 504}
#: (kubeconfig, context, $KUBECONFIG) -> ApiClient: a `wait` reads the job many times,
#: each through a new backend object; the connection pool is kept
_CLIENTS: dict[tuple, Any] = {}


def _retry_after(err: Any) -> float | None:
    try:
        return float((getattr(err, "headers", None) or {}).get("Retry-After"))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ResourceCalls:
    """The client calls for one kind of resource: create(body), get(name), delete(name),
    and the list call a watch streams (with its leading arguments)."""

    create: Callable[..., Any]
    get: Callable[..., Any]
    delete: Callable[..., Any]
    lister: Callable[..., Any]
    lister_args: tuple


class KubernetesClient:
    """The API of the cluster a profile's settings name.

    Parameters
    ----------
    settings : KubernetesSettings
        Where the cluster is (kubeconfig, context) and the namespace.
    cluster_name : str
        The profile's name, for messages.
    """

    #: (connect, read) seconds for each request
    REQUEST_TIMEOUT = (5.0, 30.0)
    #: attempts per request while the API answers 429/5xx or drops the connection, the
    #: first wait between them (doubling), and the longest wait a Retry-After may ask for
    REQUEST_ATTEMPTS = 4
    RETRY_DELAY = 0.5
    RETRY_AFTER_MAX = 5.0

    def __init__(self, settings: KubernetesSettings, cluster_name: str):
        self.settings = settings
        self.cluster_name = cluster_name

    @property
    def api(self):
        """The ``kubernetes.client.ApiClient`` (one per kubeconfig and context in the
        process)."""
        # one client per kubeconfig and context in the process (a `wait` reads the job many
        # times, each through a new backend object; the connection pool is kept)
        settings = self.settings
        key = (settings.kubeconfig, settings.context, os.environ.get("KUBECONFIG"))
        if key not in _CLIENTS:
            _CLIENTS[key] = self._connect()
        return _CLIENTS[key]

    def _connect(self):
        settings = self.settings
        try:
            from kubernetes import client, config
        except ImportError:
            raise UsageError("the kubernetes backend needs the official client: "
                             "pip install 'shipyard[k8s]'") from None
        configuration = client.Configuration()
        kubeconfig = settings.kubeconfig or os.environ.get("KUBECONFIG")
        default = Path.home() / ".kube" / "config"
        try:
            if kubeconfig or default.is_file():
                config.load_kube_config(config_file=kubeconfig, context=settings.context,
                                        client_configuration=configuration,
                                        persist_config=False)
            else:
                config.load_incluster_config(client_configuration=configuration)
        except (config.ConfigException, OSError, ValueError) as err:
            raise ClusterError(
                f"cluster {self.cluster_name!r}: no usable Kubernetes credentials ({err}); "
                "set `kubeconfig`/`context` in the profile, KUBECONFIG, or ~/.kube/config "
                "(or run inside a pod with a service account)") from None
        api = client.ApiClient(configuration)
        api.user_agent = f"shipyard/{__version__}"
        return api

    def call(self, what: str, method: Callable, *args: Any,
              missing_ok: bool = False, conflict_ok: bool = False, **kwargs: Any) -> Any:
        """One API request: bounded, retried while the API is overloaded or unreachable.

        Returns None for a 404 with ``missing_ok`` and ``"conflict"`` for a 409 with
        ``conflict_ok``; every other failure is a ClusterError naming what was attempted.
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", self.REQUEST_TIMEOUT)
        delay = self.RETRY_DELAY
        for attempt in range(1, self.REQUEST_ATTEMPTS + 1):
            last = attempt == self.REQUEST_ATTEMPTS
            try:
                return method(*args, **kwargs)
            except ApiException as err:
                if err.status == 404 and missing_ok:
                    return None
                if err.status == 409 and conflict_ok:
                    return "conflict"
                if err.status in _TRANSIENT and not last:
                    time.sleep(min(_retry_after(err) or delay, self.RETRY_AFTER_MAX))
                    delay *= 2
                    continue
                raise self.error(what, err) from None
            except (HTTPError, OSError) as err:
                if not last:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise ClusterError(
                    f"cannot reach the Kubernetes API of cluster {self.cluster_name!r} to "
                    f"{what} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''});"
                    " check the kubeconfig's server address and that the cluster is up"
                ) from None
        raise AssertionError("unreachable")

    def error(self, what: str, err: Any) -> ClusterError:
        """The ClusterError for an API answer ``err`` to ``what`` was asked (403 names the
        Role that grants it)."""
        settings = self.settings
        try:
            message = json.loads(err.body).get("message") or err.reason
        except (TypeError, ValueError, AttributeError):
            message = err.reason
        where = f"in namespace {settings.namespace!r} of cluster {self.cluster_name!r}"
        if err.status == 403:
            return ClusterError(
                f"Kubernetes refused to {what} {where} (403 Forbidden: {message}); the "
                "submitting account needs the shipyard-submitter Role of k8s/submitter-role.yaml "
                "(kubectl apply -k k8s/)")
        if err.status == 401:
            return ClusterError(f"Kubernetes did not accept the credentials to {what} {where} "
                                f"(401: {message}); log in again or fix the kubeconfig")
        return ClusterError(f"Kubernetes could not {what} {where} ({err.status} {message})")

    def resources(self, kind: str) -> ResourceCalls:
        """The calls for resources of ``kind`` (a Job through BatchV1Api, the custom
        resources through CustomObjectsApi)."""
        from kubernetes import client

        api = self.api
        ns = self.settings.namespace
        if kind == "Job":
            batch = client.BatchV1Api(api)
            return ResourceCalls(
                create=lambda body, **kw: batch.create_namespaced_job(ns, body, **kw),
                get=lambda name, **kw: batch.read_namespaced_job(name, ns, **kw),
                delete=lambda name, **kw: batch.delete_namespaced_job(
                    name, ns, propagation_policy="Foreground", **kw),
                lister=batch.list_namespaced_job, lister_args=(ns,))
        api_version, _, plural = KINDS[kind]
        group, version = api_version.split("/")
        custom = client.CustomObjectsApi(api)
        return ResourceCalls(
            create=lambda body, **kw: custom.create_namespaced_custom_object(
                group, version, ns, plural, body, **kw),
            get=lambda name, **kw: custom.get_namespaced_custom_object(
                group, version, ns, plural, name, **kw),
            delete=lambda name, **kw: custom.delete_namespaced_custom_object(
                group, version, ns, plural, name, propagation_policy="Foreground", **kw),
            lister=custom.list_namespaced_custom_object,
            lister_args=(group, version, ns, plural))

    def plain(self, obj: Any) -> dict[str, Any]:
        """An API object as the JSON the API sent (camelCase keys)."""
        return self.api.sanitize_for_serialization(obj) if obj is not None else {}
