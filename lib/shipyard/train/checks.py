"""Check a torch job before Ray starts: its dataset can be read, and the columns its
config names (``target``, ``features``) are in it."""

from __future__ import annotations

from shipyard.core.errors import InputDataError
from shipyard.data.schema import forget_layouts, missing_column_problems, read_schema
from shipyard.train.spec import TorchWorkload

__all__ = ["check_workload"]

_PREFIX = "spec.torch"


def check_workload(block: TorchWorkload) -> list[str]:
    """Every problem of a torch job found without training, as spec lines."""
    if block.data is None:
        return []
    forget_layouts()
    try:
        schema = read_schema(block.data)
    except InputDataError as err:
        return [f"{_PREFIX}.data.path: {err}"]
    problems = []
    for key in ("target", "features"):
        value = block.config.get(key)
        columns = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        problems += missing_column_problems(f"{_PREFIX}.config.{key}", schema, columns)
    return problems
