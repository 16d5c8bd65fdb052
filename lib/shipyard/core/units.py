"""Parsing and printing of the human units a job spec uses: durations and memory sizes.

Examples
--------
>>> parse_duration("1h30m")
5400.0
>>> format_duration(5400)
'1h30m'
>>> parse_memory("4GiB")
4294967296
>>> format_memory(4294967296)
'4GiB'
"""

from __future__ import annotations

import re
import time

__all__ = ["parse_duration", "format_duration", "parse_memory", "format_memory",
           "format_utc"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}

# Decimal (kB, MB ...) and binary (KiB, MiB ...) units, plus Kubernetes' short forms
# (K, M, G = decimal; Ki, Mi, Gi = binary) so a size copied from a pod spec works too.
_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6,
    "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20,
    "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40,
}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(value: object) -> float:
    """Turn ``30m``, ``1h30m``, ``45s``, ``1.5h`` or a number of seconds into seconds.

    Parameters
    ----------
    value : str or int or float
        The duration. A bare number means seconds.

    Returns
    -------
    float
        The duration in seconds, greater than zero.

    Raises
    ------
    ValueError
        With a message that shows the accepted forms.

    Examples
    --------
    >>> parse_duration("90s"), parse_duration(90), parse_duration("2m")
    (90.0, 90.0, 120.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as 30s, 10m or 1h30m, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValueError(
                f"must be a duration such as 30s, 10m or 1h30m, got {value!r}"
            )
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"must be a duration such as 30s, 10m or 1h30m, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"must be longer than zero, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Print seconds in the compact form :func:`parse_duration` reads back.

    Examples
    --------
    >>> format_duration(1800), format_duration(3661), format_duration(2.5)
    ('30m', '1h1m1s', '2.5s')
    """
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    out = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out) or "0s"


def parse_memory(value: object) -> int:
    """Turn ``4GiB``, ``512MiB``, ``2G``, ``1.5GB`` or a number of bytes into bytes.

    Parameters
    ----------
    value : str or int
        The size. Binary units (KiB, MiB, GiB, TiB, or Ki, Mi, Gi) are powers of 1024,
        decimal ones (kB, MB, GB, TB, or K, M, G) powers of 1000.

    Returns
    -------
    int
        The size in bytes, greater than zero.

    Raises
    ------
    ValueError
        With a message that shows the accepted forms.

    Examples
    --------
    >>> parse_memory("512MiB"), parse_memory("1GB"), parse_memory(1024)
    (536870912, 1000000000, 1024)
    """
    hint = "a memory size such as 512MiB, 4GiB or 2GB"
    if isinstance(value, bool):
        raise ValueError(f"must be {hint}, got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _MEMORY.match(value)
        unit = match.group(2).lower() if match else None
        if not match or unit not in _MEMORY_UNITS:
            raise ValueError(f"must be {hint}, got {value!r}")
        size = int(float(match.group(1)) * _MEMORY_UNITS[unit])
    else:
        raise ValueError(f"must be {hint}, got {value!r}")
    if size <= 0:
        raise ValueError(f"must be larger than zero, got {value!r}")
    return size


def format_memory(size: int) -> str:
    """Print bytes with the largest binary unit that divides them exactly.

    Examples
    --------
    >>> format_memory(4 * 2**30), format_memory(1536 * 2**20), format_memory(1000)
    ('4GiB', '1536MiB', '1000B')
    """
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def format_utc(ts: float | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (``-`` for None), for people.

    Examples
    --------
    >>> format_utc(0), format_utc(None)
    ('1970-01-01 00:00:00 UTC', '-')
    """
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))
