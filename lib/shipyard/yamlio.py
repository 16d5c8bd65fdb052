"""Reading YAML the way a job spec needs it.

Two departures from PyYAML's defaults, both to avoid silent surprises:

- Booleans are YAML 1.2's: only ``true`` and ``false``. YAML 1.1 also reads ``yes``,
  ``no``, ``on`` and ``off`` as booleans, which turns pandas' ``merge: {on: [id]}`` into
  ``{True: [id]}``.
- Duplicate keys are an error (PyYAML silently keeps the last one, so a second
  ``resources:`` would quietly replace the first).

Examples
--------
>>> load_yaml("merge: {on: [id], how: left}\\nflag: yes\\nok: true")
{'merge': {'on': ['id'], 'how': 'left'}, 'flag': 'yes', 'ok': True}
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml", "StrictLoader"]


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader with YAML 1.2 booleans that refuses duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


# Replace the YAML 1.1 boolean resolver with YAML 1.2's (true/false in any case).
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


def load_yaml(text: str) -> Any:
    """Parse YAML text with :class:`StrictLoader`."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
