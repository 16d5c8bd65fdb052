"""The ``dataframe`` workload: read, run the steps, write the output, report.

1. read every input's schema and plan what the readers may skip (columns, row groups);
2. profile the main input (its own pass: sharing the output's pass would keep every
   input partition in memory until both were done with it);
3. run the steps on the main input, lazily (steps needing a whole-dataset statistic
   compute it on the way);
4. compute, in one pass, the output (to a staging location) and the row count after
   each step; then commit the output atomically;
5. draw the report's figures (unless ``report: {figures: false}``): histograms and
   correlations of the main input's numeric columns, computed on the cluster over a read
   of those columns only (one more pass with the profile's ranges, two without the
   profile), missing values per column and rows after each step
   (:mod:`shipyard.report.dataframe_figures`).

``result.json`` gets ``outputs``, ``rows`` (in the input, read after pushed-down
filters, written), ``steps`` (rows after each), ``profile`` (the input's
info/describe/missing counts, of the columns read), ``read`` (what was pushed down into
the readers), ``partitions`` and ``partition_size``, ``notes`` (statistics the steps
used), and ``artifacts``: none, ``{}`` (the output is the dataset, under ``outputs``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import dask

from shipyard.core.errors import InputDataError
from shipyard.data import spec as s
from shipyard.data.ops import StepEnv, apply_step
from shipyard.data.profile import finish_profile, profile_tasks
from shipyard.data.pushdown import plan_reads
from shipyard.data.readers import estimated_bytes, read_input
from shipyard.data.schema import Schema, parquet_layout, read_schema
from shipyard.data.sizing import partition_size_for
from shipyard.data.writers import stage_output
from shipyard.report import dataframe_figures as figs

if TYPE_CHECKING:
    from shipyard.runtime.context import JobContext

__all__ = ["run"]


def run(block: s.DataFrameWorkload, ctx: JobContext) -> dict[str, Any]:
    """Run a dataframe job on ``ctx.client``'s cluster."""
    started = time.time()
    workers = ctx.client.scheduler_info()["workers"].values()
    partition_size = partition_size_for(
        block.partition_size, [(w.get("memory_limit"), w.get("nthreads", 1)) for w in workers])
    if partition_size < block.partition_size:
        ctx.logger.info("partitions of %d MiB, to fit the workers' memory",
                        partition_size // 2**20)
    schemas: dict[str, Schema] = {name: read_schema(spec) for name, spec in block.inputs.items()}
    arrow_schemas = {name: parquet_layout(spec).schema for name, spec in block.inputs.items()
                     if spec.resolved_format == "parquet"}
    plan = plan_reads(block, schemas, arrow_schemas)

    def read(name: str):
        return read_input(block.inputs[name], columns=plan.columns.get(name),
                          filters=plan.filters.get(name), partition_size=partition_size)

    env = StepEnv(read=read, estimated_bytes=lambda name: estimated_bytes(block.inputs[name]))
    total = len(block.steps) + 2
    ctx.progress("read", done=0, total=total)
    frame = read(block.main_name)
    source = frame
    partitions = frame.npartitions
    profile = None
    describe = None
    if block.profile:
        ctx.progress("profile", done=0, total=total)
        (profiled,) = dask.compute(profile_tasks(source))
        profile = finish_profile(source, profiled)
        describe = profiled.get("numeric")
    counts = [frame.shape[0]]
    for index, item in enumerate(block.steps):
        ctx.progress(f"step {index}: {s.step_name(item)}", done=index + 1, total=total)
        try:
            frame = apply_step(frame, item, env)
        except (KeyError, TypeError, ValueError) as err:
            raise InputDataError(f"steps[{index}] ({s.step_name(item)}) failed on the data: "
                                 f"{type(err).__name__}: {err}") from err
        counts.append(frame.shape[0])

    ctx.progress("compute", done=total - 1, total=total)
    lazy: dict[str, Any] = {"counts": counts}
    staged = None
    if block.output is not None:
        staged = stage_output(frame, block.output, f"{ctx.job_id}-{ctx.attempt}")
        lazy["write"] = staged.write
    try:
        (computed,) = dask.compute(lazy)
        if staged is not None:
            staged.commit()
    except BaseException:
        if staged is not None:
            staged.abort()
        raise
    if staged is not None:
        ctx.add_output(staged.path)

    rows = [int(n) for n in computed["counts"]]
    main = block.inputs[block.main_name]
    # rows in the input itself: Parquet footers know it; pushed-down filters skip rows
    stored = parquet_layout(main).num_rows if main.resolved_format == "parquet" else rows[0]
    row_counts = {"input": stored, "read": rows[0], "output": rows[-1]}
    steps = [{"index": i, "step": s.step_name(item), "rows": rows[i + 1]}
             for i, item in enumerate(block.steps)]
    if ctx.figures.enabled:
        ctx.progress("figures", done=total, total=total)
        _draw_figures(block, ctx, source, filters=plan.filters.get(block.main_name),
                      partition_size=partition_size,
                      profile=profile, describe=describe, row_counts=row_counts, steps=steps)
    ctx.progress("done", done=total, total=total)
    result: dict[str, Any] = {
        "rows": row_counts,
        "steps": steps,
        "partitions": partitions,
        "partition_size": partition_size,
        "read": {name: {"columns": plan.columns.get(name),
                        "filters": [[c, op, str(v)] for c, op, v in plan.filters.get(name, [])]}
                 for name in block.inputs},
        "notes": env.notes,
        "artifacts": {},
        "seconds": round(time.time() - started, 3),
    }
    if profile is not None:
        result["profile"] = profile
    return result


def _draw_figures(block: s.DataFrameWorkload, ctx: JobContext, source, *,
                  filters: list | None, partition_size: int,
                  profile: dict[str, Any] | None, describe, row_counts: dict[str, int],
                  steps: list[dict[str, Any]]) -> None:
    """Compute and draw the report's figures; a failure costs the figures, not the job."""
    started = time.time()
    columns, _ = figs.figure_columns(source.dtypes.to_dict())
    missing = profile["missing"] if profile is not None else None
    data = None
    try:
        if columns:
            # its own read, of the numeric columns only: cheap beside the job's own passes
            frame = read_input(block.inputs[block.main_name], columns=columns,
                               filters=filters, partition_size=partition_size)
            data = figs.frame_figure_data(frame, ranges=figs.ranges_from_describe(describe),
                                          missing=missing, rows=row_counts["read"])
        elif missing is not None:
            data = figs.FrameFigureData(columns=[], plottable_columns=0,
                                        rows=row_counts["read"], missing=missing)
    except Exception as err:  # noqa: BLE001 - the report is never worth failing the job
        ctx.logger.warning("figures: the histograms and correlations were not computed: "
                           "%s: %s", type(err).__name__, err)
        if missing is not None:
            data = figs.FrameFigureData(columns=[], plottable_columns=0,
                                        rows=row_counts["read"], missing=missing)
    figs.draw_dataframe_figures(ctx.figures, data, figs.step_rows(row_counts, steps))
    ctx.logger.info("figures: %d drawn in %.2fs (%d pass(es) over %d numeric column(s))",
                    len(ctx.figures.entries), time.time() - started,
                    data.passes if data is not None else 0, len(columns))
