"""Reading YAML the way a job spec needs it.

Departures from PyYAML's defaults, to avoid silent surprises and slow refusals:

- Booleans are YAML 1.2's: only ``true`` and ``false``. YAML 1.1 also reads ``yes``,
  ``no``, ``on`` and ``off`` as booleans, which turns pandas' ``merge: {on: [id]}`` into
  ``{True: [id]}``.
- Duplicate keys are an error (PyYAML silently keeps the last one, so a second
  ``resources:`` would quietly replace the first).
- A document whose aliases expand to more than :data:`MAX_VALUES` values (an "alias
  bomb": nine levels of ten aliases each are a billion values, which took 85 s to walk
  before it was refused), or that nests deeper than :data:`MAX_DEPTH` (PyYAML recurses
  once per level), is refused before anything is built from it.

Examples
--------
>>> load_yaml("merge: {on: [id], how: left}\\nflag: yes\\nok: true")
{'merge': {'on': ['id'], 'how': 'left'}, 'flag': 'yes', 'ok': True}
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml", "StrictLoader", "MAX_VALUES", "MAX_DEPTH"]

#: the most values a document may hold once its aliases are expanded (a job spec holds
#: hundreds; a long parameter grid thousands)
MAX_VALUES = 100_000
#: the deepest nesting a document may have (a job spec nests under ten levels)
MAX_DEPTH = 100


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader with YAML 1.2 booleans that refuses duplicate keys, alias bombs and
    documents nested deeper than :data:`MAX_DEPTH`."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels; a job spec needs "
                    "far fewer", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            _refuse_alias_bombs(node)
        return node

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: its keys may be written again, and win
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


def _refuse_alias_bombs(root: yaml.Node) -> None:
    """Count the values ``root`` holds with every alias expanded, without expanding any:
    a node reached through several aliases is counted once and its count reused, so the
    work is one visit per node written in the document."""
    counts: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_counted = stack.pop()
        if id(node) in counts:
            continue
        children = _children(node)
        if children_counted:
            on_path.discard(id(node))
            counts[id(node)] = 1 + sum(counts[id(child)] for child in children)
            if counts[id(node)] > MAX_VALUES:
                raise yaml.composer.ComposerError(
                    None, None, f"its aliases expand to more than {MAX_VALUES:,} values "
                    "(a job spec holds hundreds); write the repeated part out, or refer to "
                    "it fewer times", node.start_mark)
            continue
        if id(node) in on_path:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to a collection that contains it", node.start_mark)
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in counts)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(text: str) -> Any:
    """Parse YAML text with :class:`StrictLoader`."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
