"""A Kubernetes API for tests: kmock's emulator over real HTTP, in a background thread.

The emulator stores objects and serves create/get/list/watch/patch/delete as the API
server does; this wrapper adds what the tests need and kmock leaves out (label and field
selectors on lists, ``metadata.uid``/``creationTimestamp``/``namespace``, a new
``resourceVersion`` on every write, pod logs) and a kubeconfig
that points the real ``kubernetes`` client at it; watches honour the selectors and
``timeoutSeconds`` as the API server's do. Tests play the controllers' part
through the same HTTP API (patching ``status`` as Kubernetes' own Job integration tests
do), so every request shipyard makes goes over the wire and is recorded.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import yaml
from kmock._internal import rendering

__all__ = ["Emulator", "Fault"]


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif labels.get(term) is None:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        obj = (obj or {}).get(part) if isinstance(obj, dict) else None
    return obj


def _selected(request, obj: dict[str, Any]) -> bool:
    """Whether the request's ``labelSelector`` and ``fieldSelector`` select ``obj``."""
    params = request.params or {}
    labels, fields = params.get("labelSelector"), params.get("fieldSelector")
    if labels and not _matches(obj.get("metadata", {}).get("labels") or {}, labels):
        return False
    for term in filter(None, (fields or "").split(",")):
        key, value = term.split("=", 1)
        if str(_field(obj, key)) != value:
            return False
    return True


@dataclass
class Fault:
    """Answer the next ``times`` requests that ``match`` with ``status`` (0: drop the
    connection without an answer)."""

    match: Callable[[Any], bool]
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)


class _Emulator(kmock.KubernetesEmulator):
    """kmock's emulator with selectors, uids and timestamps (as a real API server), a
    log of the requests it received, and injected faults."""

    seen: list
    faults: list
    version: int = 0

    async def _handle(self, request):
        agent = (request.headers or {}).get("User-Agent", "")
        self.seen.append((request.method.value.upper(), request.url.path, dict(request.params or {}),
                          agent))
        for fault in list(self.faults):
            if fault.times > 0 and fault.match(request):
                fault.times -= 1
                if fault.status == 0:
                    request._raw_request.transport.close()
                    return aiohttp.web.Response(status=500)
                response = await self._render_error(kmock.KubernetesError(
                    status=fault.status, reason="Injected", message=f"injected {fault.status}"))
                response.headers.update(fault.headers)
                return response
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp",
                            datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            # the URL's namespace, as the API server fills it in (kmock's watches match an
            # event's object by the namespace written in it)
            if request.namespace:
                meta.setdefault("namespace", request.namespace)
        if (request.action in (kmock.action.CREATE, kmock.action.UPDATE)
                and isinstance(request.data, dict)):
            # every write gives the object a new resourceVersion, as the API server's
            # (etcd's revision) does; kmock keeps the one it was created with
            self.version += 1
            request.data.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        return await super()._handle(request)

    async def _serve_list(self, request):
        result = await super()._serve_list(request)
        return {**result, "items": [i for i in result["items"] if _selected(request, i)]}

    async def _serve_watch(self, request):
        """kmock's watch, with what the API server adds: only the objects its label and
        field selectors select, and an end after ``timeoutSeconds``. (kube-apiserver,
        staging/src/k8s.io/apiserver/pkg/endpoints/handlers/get.go, ListResource: a watch
        request's ``TimeoutSeconds`` becomes the timeout after which its WatchServer
        ends the stream; kmock's watch never ends by itself.)"""
        timeout = (request.params or {}).get("timeoutSeconds")
        events = super()._serve_watch(request)
        try:
            # in this task: kmock's event bus serves the task that iterates it
            async with asyncio.timeout(float(timeout) if timeout else None):
                async for event in events:
                    if not isinstance(event, dict) or _selected(request, event.get("object") or {}):
                        yield event
        except TimeoutError:
            return
        finally:
            await events.aclose()


class Emulator:
    """The emulator running on a loopback port in its own thread.

    Attributes
    ----------
    url : str
    logs : dict
        ``{(namespace, pod): text}`` served at ``pods/<name>/log``.
    handler : kmock.KubernetesEmulator
        For assertions on the requests it received (``handler.requests``).
    """

    def __init__(self) -> None:
        self.logs: dict[tuple[str, str], str] = {}
        #: (METHOD, path, query, User-Agent) of every request, in order
        self.requests: list[tuple[str, str, dict[str, str], str]] = []
        self.faults: list[Fault] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Kubernetes emulator did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with _Emulator() as handler, kmock.Server(handler) as server:
            handler.seen, handler.faults = self.requests, self.faults
            self.handler = handler
            self.url = str(server.url).rstrip("/")
            for resource in ("v1/pods", "v1/configmaps", "v1/events", "batch/v1/jobs",
                             "kubernetes.dask.org/v1/daskjobs", "ray.io/v1/rayjobs"):
                handler.resources[resource] = {}
            handler[kmock.subresource("log")] << self._serve_log
            # the client asks for /version/ (with the slash), which the API server serves too
            handler["get /version/"] << handler._serve_server_version
            self._ready.set()
            await self._stop.wait()

    def _serve_log(self, request: rendering.Request) -> bytes:
        return self.logs.get((request.namespace, request.name), "").encode()

    def fault(self, method: str, path_part: str, status: int, times: int = 1,
              watch: bool | None = None, **headers: str) -> Fault:
        """Make the next ``times`` ``method`` requests whose path contains ``path_part``
        (and that are, or are not, watches) fail with ``status``."""
        def match(request) -> bool:
            is_watch = (request.params or {}).get("watch") in ("true", "1")
            return (request.method.value.upper() == method and path_part in request.url.path
                    and (watch is None or watch == is_watch))
        fault = Fault(match, status, times, headers)
        self.faults.append(fault)
        return fault

    def kubeconfig(self, path: Path, namespace: str = "shipyard") -> Path:
        """Write a kubeconfig for this server (context ``emulator``) to ``path``."""
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "test-token"}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator",
                                                          "user": "tester",
                                                          "namespace": namespace}}],
        }))
        return path

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
