"""Check a torch job before Ray starts: its dataset can be read, and the columns its
config names (``target``, ``features``) are in it."""

from __future__ import annotations

from shipyard.data.schema import forget_layouts, read_schema
from shipyard.errors import InputDataError
from shipyard.suggest import closest
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
    named = {"target": block.config.get("target"), "features": block.config.get("features")}
    problems = []
    for key, value in named.items():
        columns = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for column in schema.missing(columns):
            guess = closest(column, list(schema.columns))
            hint = f"; did you mean {guess!r}?" if guess else ""
            problems.append(f"{_PREFIX}.config.{key}: column {column!r} is not in "
                            f"{block.data.path}{hint} (its columns: {', '.join(schema.names())})")
    return problems
