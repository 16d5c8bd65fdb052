"""The JSON Schema of ``result.json`` (``result.schema.json`` beside this module).

Other tools may validate a job's result against it (the tests do, for every workload)::

    import jsonschema, shipyard
    jsonschema.validate(shipyard.Job(job_id).result(), shipyard.result_schema())
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["result_schema"]


@cache
def _text() -> str:
    return files("shipyard.jobs").joinpath("result.schema.json").read_text()


def result_schema() -> dict[str, Any]:
    """The schema, as a dict (a fresh copy: callers may change it).

    Examples
    --------
    >>> result_schema()["title"]
    'shipyard result.json'
    """
    return json.loads(_text())
