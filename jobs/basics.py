"""The demo job: the NumPy and pandas basics at a million rows, on the job's Dask cluster.

1. per-column statistics (mean, standard deviation, min, max) of a numeric table,
2. normalisation to zero mean and unit variance,
3. a matrix-vector product (a linear score per row),
4. a group-by (score mean, spread and count per group),

each computed across the Dask workers, then written out: the normalised table as
Parquet (one file per partition), the statistics as CSV, the group-by as Parquet.
The array steps use :mod:`shipyard.data.arrays`; ``tests/test_demo_job.py`` checks
every number against NumPy and pandas.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np

from shipyard.data.arrays import column_statistics, matvec, standardize


def make_data(rows: int, columns: int, groups: int, seed: int, chunk_rows: int):
    """The input: ``rows x columns`` floats (each column its own scale and offset), a
    group key per row, and the weights of the linear score. Same arguments, same data."""
    rng = da.random.default_rng(seed)
    scales = np.linspace(1.0, 10.0, columns)
    offsets = np.arange(columns, dtype=float) * 100.0
    table = rng.standard_normal((rows, columns), chunks=(chunk_rows, columns)) * scales + offsets
    keys = rng.integers(0, groups, size=rows, chunks=chunk_rows)
    weights = np.linspace(-1.0, 1.0, columns)
    return table, keys, weights


def _replace_dir(target: Path, build) -> None:
    """Write a directory next to ``target`` and swap it in only once it is complete."""
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    build(staging)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def draw_figures(figures, score, by_group, bins: int = 40) -> None:
    """The report's figure: the score's histogram (computed on the cluster) and the rows
    in each group (a python job draws its own figures through ``ctx.figures``)."""
    low, high = dask.compute(score.min(), score.max())
    counts, edges = da.histogram(score, bins=bins, range=(float(low), float(high)))
    counts = counts.compute()
    with figures.figure("score", "Score distribution and group sizes", size=(9, 3.6),
                        ncols=2, caption="The score (normalised features times the "
                        "weights) over all rows, and the rows in each group"
                        ) as (fig, (left, right)):
        left.stairs(counts, edges, fill=True, color="#5c8fd6")
        left.set(xlabel="score", ylabel="rows")
        right.bar(by_group.index.astype(str), by_group["rows"], color="#8fb5e8")
        right.set(xlabel="group", ylabel="rows")


def main(ctx, rows: int = 1_000_000, columns: int = 8, groups: int = 12, seed: int = 42,
         chunk_rows: int = 125_000, output: str = "out/basics"):
    """Compute the basics on ``ctx.client``'s cluster and write them under ``output``.

    A trial run (``--sample``) computes that share of the rows, split in about as many
    partitions as the full run (the same 8 for the shipped sizes), so every step still
    combines partitions across the workers.
    """
    if ctx.sample is not None:
        partitions = -(-rows // chunk_rows)
        rows = max(int(rows * ctx.sample), partitions)
        chunk_rows = -(-rows // partitions)
    client = ctx.client
    names = [f"x{i}" for i in range(columns)]
    table, keys, weights = make_data(rows, columns, groups, seed, chunk_rows)
    table = table.persist()  # read by every step below: compute it once, keep it on the workers
    ctx.logger.info("%d rows x %d columns in %d partitions on %d workers", rows, columns,
                    table.numblocks[0], len(client.scheduler_info()["workers"]))

    ctx.progress("statistics", done=0, total=4)
    stats = column_statistics(table, names)

    ctx.progress("normalise", done=1, total=4)
    normalised = standardize(table, stats)
    check_mean, check_std = dask.compute(normalised.mean(axis=0), normalised.std(axis=0))

    ctx.progress("matrix-vector", done=2, total=4)
    score = matvec(normalised, weights)

    ctx.progress("group-by", done=3, total=4)
    frame = dd.from_dask_array(
        da.concatenate([normalised, score[:, None], keys[:, None].astype(float)], axis=1),
        columns=[*names, "score", "group"],
    )
    frame["group"] = frame["group"].astype("int64")
    by_group = (frame.groupby("group")
                .agg(score_mean=("score", "mean"), score_std=("score", "std"),
                     x0_mean=("x0", "mean"), rows=("score", "size"))
                .compute().sort_index())

    ctx.progress("write", done=4, total=4)
    target = Path(output)
    if ctx.figures.enabled:
        draw_figures(ctx.figures, score, by_group)

    def write(staging: Path) -> None:
        frame.to_parquet(staging / "normalised.parquet", write_index=False)
        stats.drop(columns="sum").rename_axis("column").to_csv(staging / "column_stats.csv")
        by_group.reset_index().to_parquet(staging / "by_group.parquet", index=False)

    _replace_dir(target, write)
    for name in ("normalised.parquet", "column_stats.csv", "by_group.parquet"):
        ctx.add_output(str(target / name))

    return {
        "rows": rows,
        "columns": columns,
        "partitions": int(table.numblocks[0]),
        "column_stats": stats.drop(columns="sum").round(6).to_dict(orient="index"),
        "normalised": {"max_abs_mean": float(np.abs(check_mean).max()),
                       "max_abs_std_minus_1": float(np.abs(check_std - 1).max())},
        "score_weights": weights.tolist(),
        "by_group": by_group.round(6).reset_index().to_dict(orient="records"),
    }
