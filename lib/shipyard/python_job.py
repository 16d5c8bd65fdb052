"""The ``python`` workload: call ``func(ctx, **params)`` and keep what it returns.

The return value goes to ``result.json`` under ``"value"``; it must be JSON-able.
NumPy scalars and arrays are converted (they are what such functions usually return).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shipyard.entrypoints import resolve_callable

if TYPE_CHECKING:
    from shipyard.context import JobContext
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
    """Run the entrypoint of ``block`` with ``ctx``; return ``{"value": <its result>}``."""
    func = resolve_callable(block.entrypoint)
    ctx.logger.info("calling %s with %s", block.entrypoint, sorted(block.params))
    value = func(ctx, **block.params)
    try:
        return {"value": to_jsonable(value)}
    except TypeError as err:
        raise TypeError(f"{block.entrypoint} returned a value that {err}") from None
