"""'Did you mean' suggestions for misspelt names (fields, clusters, values)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest"]


def closest(word: str, choices: Iterable[str]) -> str | None:
    """Return the choice nearest to ``word``, or None when nothing is close.

    Examples
    --------
    >>> closest("resorces", ["cluster", "resources", "retries"])
    'resources'
    >>> closest("gpu", ["workers", "gpus_per_worker"])
    'gpus_per_worker'
    >>> closest("xyz", ["cluster"]) is None
    True
    """
    word, options = str(word), list(choices)
    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if found:
        return found[0]
    # a shortened name ("gpu" for "gpus_per_worker") is too short for difflib's ratio
    containing = [o for o in options if len(word) >= 3 and word.lower() in o.lower()]
    return containing[0] if len(containing) == 1 else None
