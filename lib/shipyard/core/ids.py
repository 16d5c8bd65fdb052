"""Job ids: readable and sortable by time, ``<name>-<yyyymmdd-hhmmss>-<4 hex>``."""

from __future__ import annotations

import re
import secrets
import time

__all__ = ["new_job_id", "JOB_ID_PATTERN"]

JOB_ID_PATTERN = re.compile(r"^(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(?P<stamp>\d{8}-\d{6})-[0-9a-f]{4}$")


def new_job_id(name: str, now: float | None = None) -> str:
    """A new id for a job called ``name``; the time is UTC, so ids sort across machines.

    The four random hex digits separate jobs submitted in the same second; the store
    refuses a duplicate and the caller draws again.

    Examples
    --------
    >>> new_job_id("churn-prep", now=0.0)[:-5]
    'churn-prep-19700101-000000'
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{name}-{stamp}-{secrets.token_hex(2)}"
