"""The backend contract: what every place that runs jobs must provide.

A backend is one module with one subclass of :class:`Backend`. The public methods are
fixed and do the bookkeeping every backend shares (the job store record, the run
directory, the spec file, the terminal-state rules); subclasses fill the ``_``-prefixed
hooks with what differs (how a job is started, watched, stopped).

Hooks
-----
_check_reachable()
    Raise :class:`~shipyard.core.errors.ClusterError` if the cluster cannot be reached.
    Called before anything is written, so an unreachable cluster leaves no job behind.
_scheduler_address()
    The Dask scheduler the runner should use, or None to start a LocalCluster.
_ships_code(cluster_address)
    Whether the job's code package goes with it: where it runs on processes that do not
    see this machine's files (default False).
_shares_filesystem()
    Whether the cluster reads and writes this machine's paths (default True); where it
    does not, data at local paths is refused at submission.
_launch(record)
    Start the job; return quickly. The spec is already in ``<run dir>/spec.yaml``.
_refresh, _cancel, _read_log, _await_change
    Reading, stopping and following a job: the hooks of
    :class:`~shipyard.core.tracker.Tracker`, the base of every backend.
_up(), _down(), _describe()
    Start, stop and describe a cluster this backend manages (``shipyard cluster ...``).
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlparse
from typing import TYPE_CHECKING, Any, ClassVar

from shipyard.core.atomic import write_text_atomic
from shipyard.core.code_package import CodePackage, build_code_package
from shipyard.core.errors import ClusterError, SpecError, UsageError
from shipyard.core.ids import new_job_id
from shipyard.core.states import FailureKind, JobState
from shipyard.core.tracker import Tracker
from shipyard.core.workloads import data_fields

if TYPE_CHECKING:
    from shipyard.backends.profiles import ClusterProfile
    from shipyard.core.home import Home
    from shipyard.core.store import JobRecord, JobStore
    from shipyard.spec import JobSpec

__all__ = ["Backend", "ExistingCluster", "on_this_machine"]


def on_this_machine(address: str) -> bool:
    """Whether ``address`` (``tcp://host:port``, ``http://host:port``) is on this machine.

    Examples
    --------
    >>> on_this_machine("tcp://127.0.0.1:8786"), on_this_machine("http://localhost:8265")
    (True, True)
    >>> on_this_machine("tcp://dask.internal:8786")
    False
    """
    host = urlparse(address).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Backend(Tracker):
    """Base class of the backends (see the module docstring for the hooks).

    Parameters
    ----------
    profile : ClusterProfile
        The resolved ``--cluster``.
    home : Home
        ``SHIPYARD_HOME``: the job store and run directories.
    store : JobStore
    """

    #: The backend's registry name.
    name: ClassVar[str] = ""

    def __init__(self, profile: ClusterProfile, home: Home, store: JobStore):
        super().__init__(home, store)
        self.profile = profile

    # -- public API (fixed) ------------------------------------------------------------

    def submit(self, spec: JobSpec, *, cluster_address: str | None = None) -> JobRecord:
        """Record the job as PENDING, write its spec to the run directory, start it.

        ``cluster_address`` names the Dask scheduler to compute on where the backend
        would otherwise choose (a pipeline's stages share one cluster).
        """
        self.refuse_local_data(spec)
        self._check_reachable()
        # a cluster the caller hands over (a pipeline driver's own, whose workers import
        # what the driver imports) needs no package; one the backend finds may
        handed = cluster_address is not None
        cluster_address = cluster_address or self._scheduler_address()
        # built before anything is recorded: a package refused (too big) leaves no job
        package = (self.code_package(spec)
                   if not handed and self._ships_code(cluster_address) else None)
        record = self.store.create(
            lambda: new_job_id(spec.name),
            name=spec.name,
            cluster=self.profile.name,
            backend=self.profile.backend,
            max_attempts=spec.spec.retries + 1,
            timeout_s=spec.spec.timeout,
            cluster_address=cluster_address,
            workdir=os.getcwd(),
            spec_dir=spec.base_dir,
            labels=dict(spec.metadata.labels),
        )
        run_dir = self.home.run_dir(record.id)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir.spec, spec.to_yaml())
        if package is not None:
            run_dir.set_side("code", {"digest": package.digest, "zip": str(package.path),
                                      "files": len(package.names), "size": package.size})
        try:
            self._launch(record)
        except Exception as err:
            reason = f"could not start the job: {err}"
            self.store.transition(record.id, JobState.FAILED, reason,
                                  failure_kind=FailureKind.CLUSTER)
            raise ClusterError(f"{self.profile.name}: {reason}") from err
        return self.store.get(record.id)

    def check_reachable(self) -> None:
        """Raise :class:`~shipyard.core.errors.ClusterError` if the cluster cannot be
        reached (a pipeline asks before it records anything)."""
        self._check_reachable()

    def scheduler_address(self) -> str | None:
        """The Dask scheduler this backend's jobs compute on, or None where each
        attempt starts its own."""
        return self._scheduler_address()

    def up(self) -> dict[str, Any]:
        """Start the cluster this profile describes; return its description."""
        return self._up()

    def down(self) -> dict[str, Any]:
        """Stop the cluster this profile describes; return its description."""
        return self._down()

    def describe(self) -> dict[str, Any]:
        """Whether the cluster is up, its address and dashboard."""
        return self._describe()

    def kept_output(self, job_id: str, path: str) -> str:
        """Where job ``job_id``'s output ``path`` is once it ran: where it was written
        (default), or where the cluster keeps it (Kubernetes: local paths in its object
        store). A pipeline's later stages read it there."""
        return path

    def refuse_local_data(self, spec: JobSpec) -> None:
        """Refuse a spec whose data is at paths on this machine, where the cluster does
        not share its disk (before anything is recorded or the cluster is asked).

        Raises
        ------
        SpecError
            Naming every such field.
        """
        if self._shares_filesystem():
            return
        name = spec.workload_name
        local = [f"spec.{name}.{found.field}: {found.path!r} is a path on this machine"
                 for found in data_fields(name, spec.to_dict()["spec"][name])
                 if "://" not in found.path]
        if local:
            raise SpecError(
                f"{spec.source} cannot run on cluster {self.profile.name!r}: its nodes do not "
                "see this machine's disk. Put the data in object storage (s3://, gs://, ...) "
                "and point the spec there (e.g. --set FIELD=s3://bucket/path), or set "
                "`shared_filesystem: true` in the cluster's profile if its nodes mount these "
                "paths", local)

    def code_package(self, spec: JobSpec) -> CodePackage | None:
        """The spec's code package (None for a spec without a file or ``code.paths``:
        nothing says where its code is)."""
        if spec.base_dir is None and not spec.spec.code.paths:
            return None
        return build_code_package(spec.base_dir, spec.spec.code.paths, spec.spec.code.exclude,
                                  cache_dir=self.home.code_cache, skip=[self.home.root])

    # -- hooks (subclasses fill these) -------------------------------------------------

    def _check_reachable(self) -> None:
        return None

    def _scheduler_address(self) -> str | None:
        return None

    def _ships_code(self, cluster_address: str | None) -> bool:
        return False

    def _shares_filesystem(self) -> bool:
        return True

    def _launch(self, record: JobRecord) -> None:
        raise NotImplementedError

    def _up(self) -> dict[str, Any]:
        raise UsageError(f"cluster {self.profile.name!r} ({self.name}) is not started by shipyard")

    def _down(self) -> dict[str, Any]:
        raise UsageError(f"cluster {self.profile.name!r} ({self.name}) is not stopped by shipyard")

    def _describe(self) -> dict[str, Any]:
        return {"name": self.profile.name, "backend": self.name, "address": self.profile.address}


class ExistingCluster:
    """Mixin for backends that use a cluster someone else runs (a Dask scheduler, a Ray
    head): ``shipyard cluster up/down`` refuses, ``cluster status`` says if it answers.

    The backend sets :attr:`cluster_kind` and :attr:`how_to_start`, and its
    ``_check_reachable`` is the liveness check.
    """

    #: What the cluster is, for messages: "an existing Dask scheduler".
    cluster_kind: ClassVar[str] = "an existing cluster"
    #: How its owner starts and stops it, for messages.
    how_to_start: ClassVar[str] = ""

    def _up(self) -> dict[str, Any]:
        hint = f" ({self.how_to_start})" if self.how_to_start else ""
        raise UsageError(f"cluster {self.profile.name!r} is {self.cluster_kind} "
                         f"({self.profile.address}); shipyard uses it but does not "
                         f"start or stop it{hint}")

    _down = _up

    def _shares_filesystem(self) -> bool:
        # a profile says so for a cluster whose nodes mount the same paths (NFS); a
        # cluster on this machine (loopback) sees its disk; any other does not
        said = self.profile.settings.get("shared_filesystem")
        if said is not None:
            return bool(said)
        return on_this_machine(self.profile.address or "")

    def _describe(self) -> dict[str, Any]:
        try:
            self._check_reachable()
            up = True
        except ClusterError:
            up = False
        return {"name": self.profile.name, "backend": self.name,
                "address": self.profile.address, "up": up}
