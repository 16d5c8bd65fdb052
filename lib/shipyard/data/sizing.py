"""How big a partition may be, given the workers' memory.

A worker holds, while it reads one partition, its own footprint plus up to about seven
times the partition (the bytes read, the Arrow buffers, the pandas copy, each step's
result, the output being encoded; measured on 600 MiB workers streaming 4 GiB), per
thread. Partitions aim at the requested size (100 MiB by default) but shrink so that this
stays under the worker's spill threshold: that is what lets a job stream data many times
the cluster's memory. A Parquet row group is read whole, so a file's largest row group
is the smallest partition it can give; the reader warns when that is too big.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["partition_size_for", "WORKER_FOOTPRINT", "PARTITION_OVERHEAD"]

#: an idle worker after importing pandas, pyarrow and dask.dataframe: 230 MiB measured
#: with the pinned versions, 55 MiB of it numba (dask.array imports ``sparse``, which
#: dask-glm installs, which imports numba)
WORKER_FOOTPRINT = 240 * 2**20
PARTITION_OVERHEAD = 8
#: smaller partitions cost more in scheduling than they save in memory
MINIMUM = 8 * 2**20


def partition_size_for(requested: int, workers: Iterable[tuple[int | None, int]],
                       spill_fraction: float = 0.6) -> int:
    """The partition size to aim at.

    Parameters
    ----------
    requested : int
        The job's ``partition_size`` (bytes in memory).
    workers : iterable of (memory_limit or None, threads)
        Each worker's memory limit in bytes and its number of threads.
    spill_fraction : float
        The fraction of a worker's limit at which it starts spilling to disk.

    Examples
    --------
    >>> partition_size_for(100 * 2**20, [(8 * 2**30, 2)]) // 2**20       # plenty of memory
    100
    >>> partition_size_for(100 * 2**20, [(600 * 2**20, 1)]) // 2**20     # a small worker
    15
    >>> partition_size_for(2**20, [(600 * 2**20, 1)]) // 2**20           # as asked
    1
    """
    budgets = [(limit * spill_fraction - WORKER_FOOTPRINT) / (PARTITION_OVERHEAD * max(threads, 1))
               for limit, threads in workers if limit]
    if not budgets:
        return requested
    # the floor bounds what memory forces, never what the job asked for
    return int(min(requested, max(MINIMUM, min(budgets))))
