"""Job states and the transitions between them (DESIGN.md, "Job states").

``PENDING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED``; a retry goes from RUNNING back
to PENDING with the attempt number raised. A terminal state never changes again.
"""

from __future__ import annotations

import enum

__all__ = ["JobState", "ALLOWED_TRANSITIONS", "FailureKind"]


class JobState(str, enum.Enum):
    """The state of a job. A ``str`` enum, so it compares equal to its name.

    Examples
    --------
    >>> JobState.FAILED.is_terminal(), JobState("RUNNING").is_terminal()
    (True, False)
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    def is_terminal(self) -> bool:
        """True for SUCCEEDED, FAILED and CANCELLED: states that never change again."""
        return self in _TERMINAL

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

#: Which state may follow which. RUNNING -> PENDING is a retry.
ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.FAILED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {JobState.PENDING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class FailureKind(str, enum.Enum):
    """Why a job failed, and so the exit code of ``shipyard run``: the one mapping from
    an error to its kind (:meth:`of`), from a kind to the exit code (:attr:`exit_code`)
    and back from a runner's exit status (:meth:`of_exit`).

    Examples
    --------
    >>> from shipyard.core.errors import InputDataError
    >>> FailureKind.of(InputDataError("data/x.csv: no such file")).exit_code
    2
    >>> FailureKind.of(ValueError("boom")), FailureKind.of_exit(3), FailureKind.of_exit(137)
    (<FailureKind.ERROR: 'error'>, <FailureKind.CLUSTER: 'cluster'>, <FailureKind.ERROR: 'error'>)
    """

    ERROR = "error"          # the workload raised, or the runner died: exit 1
    INPUT = "input"          # bad input data: exit 2, not retried
    TIMEOUT = "timeout"      # an attempt ran past spec.timeout: exit 1
    CLUSTER = "cluster"      # the cluster could not be reached or started: exit 3
    LOST = "lost"            # the supervisor died: exit 1

    def __str__(self) -> str:
        return self.value

    @property
    def exit_code(self) -> int:
        """The exit status of the runner and of ``shipyard run`` for this failure."""
        return _EXIT_CODES.get(self, 1)

    @classmethod
    def of(cls, error: BaseException) -> FailureKind:
        """The kind of failure ``error`` is: the ``failure_kind`` shipyard's errors
        declare (:mod:`shipyard.core.errors`), else ERROR."""
        return cls(getattr(error, "failure_kind", None) or cls.ERROR)

    @classmethod
    def of_exit(cls, code: int | None) -> FailureKind:
        """Why a runner that exited with ``code`` failed, for backends that see only its
        exit status (a Ray job, a pod)."""
        return {kind.exit_code: kind for kind in (cls.INPUT, cls.CLUSTER)}.get(code, cls.ERROR)


#: The exit statuses other than 1 (every other failure exits 1).
_EXIT_CODES = {FailureKind.INPUT: 2, FailureKind.CLUSTER: 3}
