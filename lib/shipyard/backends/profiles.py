"""Cluster profiles: the small YAML files that say where jobs run.

``--cluster`` takes a profile name or an address:

- ``tcp://host:8786`` - an existing Dask scheduler (backend ``dask``);
- ``http://host:8265`` - an existing Ray cluster's Jobs API (backend ``ray``);
- a name - ``$SHIPYARD_HOME/clusters/<name>.yaml``, then ``./cluster/<name>.yaml``;
  ``local`` needs no file (a built-in profile; ``cluster/local.yaml`` may refine it).

A profile file::

    name: local            # optional: defaults to the file name
    backend: local         # local | dask | ray | kubernetes (see cluster/kubernetes.yaml)
    address: null          # dask: tcp://host:port of the scheduler; ray: http://head:8265
    python: python         # ray: the interpreter that runs the job on the cluster
    shared_filesystem: false  # dask, ray: whether the nodes mount this machine's paths
                           # (default: true only for an address on this machine); where
                           # not, data at local paths is refused at submission
    resources: {workers: 2, threads_per_worker: 1, memory_per_worker: auto}
                           # local: the size of `shipyard cluster up local`, as a job
                           # spec's spec.resources (see shipyard.backends.local_settings)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.core.errors import UsageError
from shipyard.spec.suggest import closest

__all__ = ["ClusterProfile", "resolve_cluster", "profile_dirs", "known_profiles"]

DEFAULT_CLUSTER = "local"


@dataclass(frozen=True)
class ClusterProfile:
    """A resolved ``--cluster``: its name, backend and backend settings."""

    name: str
    backend: str
    address: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    source: str | None = None


def profile_dirs(home_clusters: Path) -> list[Path]:
    """Where profile files are looked for, first match wins."""
    return [home_clusters, Path.cwd() / "cluster"]


def known_profiles(home_clusters: Path) -> list[str]:
    names = {DEFAULT_CLUSTER}
    for directory in profile_dirs(home_clusters):
        if directory.is_dir():
            names.update(p.stem for p in directory.glob("*.yaml")
                         if not p.name.endswith(".state.yaml"))
    return sorted(names)


def _read_profile(path: Path) -> ClusterProfile:
    import yaml

    from shipyard.backends import BACKENDS
    from shipyard.spec.yamlio import load_yaml

    try:
        data = load_yaml(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise UsageError(f"cluster profile {path} could not be read: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"cluster profile {path} must be a mapping")
    backend = data.pop("backend", None)
    if backend not in BACKENDS:
        raise UsageError(
            f"cluster profile {path}: backend must be one of {', '.join(sorted(BACKENDS))}, "
            f"got {backend!r}"
        )
    name = data.pop("name", path.stem)
    address = data.pop("address", None)
    if backend == "local":
        # checked where it enters, so a bad size fails the command that reads the
        # profile (exit 2), not the cluster process `cluster up` starts from it
        from shipyard.backends.local_settings import local_settings

        local_settings(str(path), data)
    return ClusterProfile(name=name, backend=backend, address=address, settings=data,
                          source=str(path))


def resolve_cluster(cluster: str | None, home_clusters: Path) -> ClusterProfile:
    """The profile for ``--cluster`` (or the spec's ``spec.cluster``; default ``local``).

    Raises
    ------
    UsageError
        For an unknown name (suggesting the closest known one) or a bad profile file.

    Examples
    --------
    >>> resolve_cluster("tcp://10.0.0.5:8786", Path("/nonexistent")).backend
    'dask'
    >>> resolve_cluster("http://10.0.0.5:8265", Path("/nonexistent")).backend
    'ray'
    """
    name = cluster or DEFAULT_CLUSTER
    if name.startswith("tcp://") or name.startswith("tls://"):
        return ClusterProfile(name=name, backend="dask", address=name)
    if name.startswith("http://") or name.startswith("https://"):
        return ClusterProfile(name=name, backend="ray", address=name.rstrip("/"))
    if "://" in name:
        raise UsageError(
            f"--cluster {name}: an address is a Dask scheduler (tcp://host:8786) or a Ray "
            "cluster's dashboard (http://host:8265); the scheme given is not supported"
        )
    for directory in profile_dirs(home_clusters):
        path = directory / f"{name}.yaml"
        if path.is_file():
            return _read_profile(path)
    if name == DEFAULT_CLUSTER:
        return ClusterProfile(name=DEFAULT_CLUSTER, backend="local")
    known = known_profiles(home_clusters)
    guess = closest(name, known)
    hint = f"; did you mean {guess!r}?" if guess else ""
    where = " or ".join(str(d) for d in profile_dirs(home_clusters))
    raise UsageError(
        f"--cluster {name}: no cluster profile of that name in {where} (known: "
        f"{', '.join(known)}){hint} An existing Dask scheduler can be given as tcp://host:port, "
        "a Ray cluster as http://host:8265."
    )


def backend_of(record: Any, home: Any, store: Any):
    """The backend a job (not a pipeline) was submitted to, as its record names it: the
    profile's name, backend and address as they were then."""
    from shipyard.backends import get_backend

    profile = ClusterProfile(name=record.cluster, backend=record.backend,
                             address=record.cluster_address)
    return get_backend(profile, home, store)
