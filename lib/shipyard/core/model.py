"""The base of every model shipyard validates a document into (job and pipeline specs,
their workload blocks, cluster profiles): unknown keys refused, values frozen, fields
settable by name as well as by alias.

Imported only by the modules that define models: reading a job's state does not load
pydantic.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    """A frozen pydantic model that forbids unknown keys (so a misspelt key is an error
    with a suggestion, not a silently ignored setting)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
