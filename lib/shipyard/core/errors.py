"""The exception hierarchy of shipyard.

Every error a user can cause derives from :class:`ShipyardError` and carries the
CLI exit code it maps to (DESIGN.md, "Exit codes"):

====  ==========================================================
code  meaning
====  ==========================================================
0     success
1     the job failed or was cancelled
2     invalid spec, bad arguments or bad input data
3     the cluster could not be reached or started
====  ==========================================================

A job that fails with one of them fails with its ``failure_kind`` (bad input is not
retried; :meth:`shipyard.core.states.FailureKind.of`).

Messages are written for the person who caused them: one paragraph that names
the field or file and says what would be right. The CLI prints the message and
nothing else (no traceback).
"""

from __future__ import annotations

from shipyard.core.states import FailureKind

__all__ = [
    "ShipyardError",
    "SpecError",
    "UsageError",
    "InputDataError",
    "InputUnreachableError",
    "ResourcesError",
    "JobNotFoundError",
    "JobFailedError",
    "ClusterError",
    "InvalidTransitionError",
]


class ShipyardError(Exception):
    """Base class of every error shipyard raises on purpose.

    Parameters
    ----------
    message : str
        The readable explanation, shown to the user as is.
    """

    exit_code: int = 1
    #: why a job that raised it failed
    failure_kind: FailureKind = FailureKind.ERROR

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SpecError(ShipyardError):
    """The job spec is invalid: wrong types, unknown keys, bad values, unreadable YAML.

    Parameters
    ----------
    message : str
        The headline ("jobs/x.yaml is not a valid job spec").
    problems : list of str, optional
        One line per problem, each starting with the field's dotted path.
    """

    exit_code = 2
    failure_kind = FailureKind.INPUT

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        full = message if not self.problems else message + ":\n" + "\n".join(
            f"  {p}" for p in self.problems
        )
        super().__init__(full)


class UsageError(ShipyardError):
    """The command line or API call itself is wrong (a bad ``--set``, an unknown cluster name)."""

    exit_code = 2


class InputDataError(ShipyardError):
    """The job's input data is unusable: a missing file, a corrupt file, a missing column.

    Raised inside a workload; the job ends FAILED without retries (retrying cannot fix
    the data) and ``shipyard run`` exits 2.
    """

    exit_code = 2
    failure_kind = FailureKind.INPUT


class InputUnreachableError(InputDataError):
    """An input this machine cannot read at all (no credentials for its bucket, no route
    to its store), as opposed to one that is not there. At submission the data checks
    then run where the job runs instead, with the cluster's access."""


class ResourcesError(InputDataError):
    """The job asks for what the cluster does not have (a GPU where there is none, more
    workers than it can place). Not retried: the same request fails the same way."""


class JobNotFoundError(ShipyardError):
    """No job with that id exists in the store."""

    exit_code = 2


class JobFailedError(ShipyardError):
    """The job ended FAILED or CANCELLED, so it has no result."""

    exit_code = 1


class ClusterError(ShipyardError):
    """The cluster could not be reached or started."""

    exit_code = 3
    failure_kind = FailureKind.CLUSTER


class InvalidTransitionError(ShipyardError):
    """A job state change that the state machine does not allow (a programming error)."""

    exit_code = 1
