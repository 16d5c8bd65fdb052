"""The settings of a ``backend: local`` cluster profile, validated.

A profile (``cluster/local.yaml`` is the shipped one)::

    name: local
    backend: local
    resources:                 # the size of `shipyard cluster up local`, as spec.resources
      workers: 2
      threads_per_worker: 1
      memory_per_worker: auto  # or 4GiB, ...; auto (the default): Dask decides

``resources`` is the job spec's :class:`~shipyard.spec.Resources`, so it takes the same
values and ``auto`` means the same there as in a job spec.

Imported only where a local profile file is read: it needs pydantic, which the quick
commands (``list``, ``status``) do not import.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shipyard.spec import Resources
from shipyard.spec.errors import validated_settings

__all__ = ["LocalSettings", "local_settings"]


class LocalSettings(BaseModel):
    """A validated ``backend: local`` profile (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resources: Resources = Field(default_factory=Resources)


def local_settings(where: str, settings: dict[str, Any]) -> LocalSettings:
    """The profile's settings, validated.

    Parameters
    ----------
    where : str
        The profile's file (or name), for messages.
    settings : dict
        The profile's keys other than ``name``, ``backend`` and ``address``.

    Raises
    ------
    UsageError
        Naming each wrong field of the profile (exit 2).

    Examples
    --------
    >>> local_settings("local", {"resources": {"memory_per_worker": "auto"}}
    ...                ).resources.dask_memory_limit
    'auto'
    >>> local_settings("local", {"resources": {"workers": 0}})
    Traceback (most recent call last):
    ...
    shipyard.core.errors.UsageError: cluster profile local (backend local) is not valid: resources.workers: must be >= 1, got 0
    """
    return validated_settings(LocalSettings, settings,
                              f"cluster profile {where} (backend local) is not valid")
