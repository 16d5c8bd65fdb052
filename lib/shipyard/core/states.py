"""Job states and the transitions between them (DESIGN.md, "Job states").

``PENDING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED``; a retry goes from RUNNING back
to PENDING with the attempt number raised. A terminal state never changes again.
"""

from __future__ import annotations

import enum

__all__ = ["JobState", "ALLOWED_TRANSITIONS", "FailureKind", "RUNNER_EXIT_CODES",
           "failure_kind_of_exit"]


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
    """Why a job failed, as far as the exit code of ``shipyard run`` is concerned."""

    ERROR = "error"          # the workload raised, or the runner died: exit 1
    INPUT = "input"          # bad input data: exit 2, not retried
    TIMEOUT = "timeout"      # an attempt ran past spec.timeout: exit 1
    CLUSTER = "cluster"      # the cluster could not be reached or started: exit 3
    LOST = "lost"            # the supervisor died: exit 1

    def __str__(self) -> str:
        return self.value


#: The runner's exit status for the failures it tells apart (every other one exits 1).
RUNNER_EXIT_CODES = {FailureKind.ERROR: 1, FailureKind.INPUT: 2, FailureKind.CLUSTER: 3}
_KIND_OF_EXIT = {code: kind for kind, code in RUNNER_EXIT_CODES.items()}


def failure_kind_of_exit(code: int | None) -> FailureKind:
    """Why a runner that exited with ``code`` failed, for backends that see only its exit
    status (a Ray job, a pod).

    Examples
    --------
    >>> failure_kind_of_exit(2), failure_kind_of_exit(137)
    (<FailureKind.INPUT: 'input'>, <FailureKind.ERROR: 'error'>)
    """
    return _KIND_OF_EXIT.get(code, FailureKind.ERROR)
