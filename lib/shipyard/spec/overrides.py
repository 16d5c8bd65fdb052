"""``--set path=value`` overrides, applied to the raw spec before it is validated.

The path is dotted from the top of the document (``spec.resources.workers``); list
items are addressed by index (``spec.dataframe.steps.0.query``). The value is read as a
YAML scalar or flow collection, as in a spec file, so ``4`` is an integer, ``true`` a
boolean and ``[a, b]`` a list; anything YAML cannot read stays a string.

Validation happens afterwards, so an override that names an unknown field is reported
like any other unknown field, with a suggestion.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from shipyard.core.errors import UsageError
from shipyard.spec.yamlio import load_yaml

__all__ = ["parse_override", "apply_overrides"]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into ``(["a", "b", "c"], value)``.

    Examples
    --------
    >>> parse_override("spec.resources.workers=4")
    (['spec', 'resources', 'workers'], 4)
    >>> parse_override("spec.python.params.name=hello world")
    (['spec', 'python', 'params', 'name'], 'hello world')
    """
    path, sep, raw = text.partition("=")
    parts = path.strip().split(".")
    if not sep or not path.strip() or any(not p for p in parts):
        raise UsageError(
            f"--set expects path=value with a dotted path such as "
            f"spec.resources.workers=4, got {text!r}"
        )
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str] | Mapping[str, Any]) -> dict:
    """Return a copy of ``data`` with each override set, creating mappings on the way.

    Parameters
    ----------
    data : mapping
        The raw spec document.
    overrides : iterable of ``"path=value"`` strings, or a mapping of path to value
        The overrides, applied in order.

    Raises
    ------
    UsageError
        When a path runs through something that is neither a mapping nor a list,
        or a list index is out of range.

    Examples
    --------
    >>> apply_overrides({"spec": {"retries": 0}}, ["spec.retries=2"])
    {'spec': {'retries': 2}}
    """
    result = copy.deepcopy(dict(data))
    if isinstance(overrides, Mapping):
        pairs = [(str(k).split("."), v) for k, v in overrides.items()]
    else:
        pairs = [parse_override(item) for item in overrides]
    for parts, value in pairs:
        node: Any = result
        for depth, key in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise UsageError(
                        f"--set {'.'.join(parts)}: {where} must be an index below "
                        f"{len(node)} of that list"
                    )
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
            elif isinstance(node, dict):
                if last:
                    node[key] = value
                else:
                    if node.get(key) is None:
                        node[key] = {}
                    node = node[key]
            else:
                raise UsageError(
                    f"--set {'.'.join(parts)}: {'.'.join(parts[:depth])} is "
                    f"{type(node).__name__} {node!r}, not a mapping, so it has no field {key!r}"
                )
    return result
