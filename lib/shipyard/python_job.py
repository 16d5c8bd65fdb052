"""The ``python`` workload: call ``func(ctx, **params)`` and keep what it returns.

The return value goes to ``result.json`` under ``"value"``; it must be JSON-able.
NumPy scalars and arrays are converted (they are what such functions usually return).
The files the function left in ``ctx.artifacts_dir`` are listed under ``"artifacts"``, by
their path in that directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.spec.entrypoints import resolve_callable

if TYPE_CHECKING:
    from shipyard.runtime.context import JobContext
    from shipyard.spec import PythonWorkload

__all__ = ["run", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Convert NumPy scalars and arrays inside ``value`` to plain Python; check the rest.

    Raises
    ------
    TypeError
        Naming the first value JSON cannot hold.

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"mean": np.float64(1.5), "counts": np.arange(3)})
    {'mean': 1.5, 'counts': [0, 1, 2]}
    """
    def default(obj: Any) -> Any:
        if hasattr(obj, "tolist") and type(obj).__module__.startswith("numpy"):
            return obj.tolist()
        raise TypeError(
            f"a {type(obj).__module__}.{type(obj).__qualname__} is not JSON-serialisable; "
            "return dicts, lists, strings, numbers, booleans or None"
        )

    return json.loads(json.dumps(value, default=default))


def run(block: PythonWorkload, ctx: JobContext) -> dict[str, Any]:
    """Run the entrypoint of ``block`` with ``ctx``; return ``{"value": <its result>,
    "artifacts": {name: path}}``."""
    func = resolve_callable(block.entrypoint)
    ctx.logger.info("calling %s with %s", block.entrypoint, sorted(block.params))
    value = func(ctx, **block.params)
    try:
        value = to_jsonable(value)
    except TypeError as err:
        raise TypeError(f"{block.entrypoint} returned a value that {err}") from None
    # ctx.artifacts_dir's path, read without creating it: a job that kept no files
    # leaves no empty directory behind
    return {"value": value, "artifacts": _kept_files(ctx.run_dir / "artifacts")}


def _kept_files(directory: Path) -> dict[str, str]:
    """The files under ``directory``, by their path in it (``"model.pkl"``,
    ``"plots/loss.png"``): absolute paths, as ``result.json`` lists artifacts. ``{}``
    when there is no such directory."""
    return {path.relative_to(directory).as_posix(): str(path.resolve())
            for path in sorted(directory.rglob("*")) if path.is_file()}
