"""What the report costs, and why its statistics are Dask reductions.

1. Job overhead: the catalog's ``churn-prep`` (dataframe, on ``--rows`` customers made by
   jobs/churn_data.py) and ``breast-cancer-grid`` (sklearn: three models, grid search,
   learning curve, permutation importance) run with the CLI (``shipyard run --json``)
   with figures on (the default) and with ``--set spec.report.figures=false``; the ratio
   is on/off, end to end (submit, cluster start, job, report page).
2. The dataframe figures' numbers (histograms of every numeric column and their
   correlation matrix) over the same customers table, on a 2-worker LocalCluster:
   shipyard's tree reduction (``frame_figure_data``: only counts and moments leave the
   workers) against pulling the numeric columns into the client and using NumPy/pandas
   (``np.histogram``, ``DataFrame.corr``). Each runs in its own process: wall time and the
   client process's peak RSS (``ru_maxrss``).

Variants are interleaved, ``--repeats`` rounds; the tables show medians and ratios.

Run::

    .venv/bin/python tests/bench/bench_report.py [--repeats 3] [--rows 2000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from timing import SHIPYARD, interleave, median, print_table, run_json  # noqa: E402

from shipyard.spec.yamlio import load_yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

STATS_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    from shipyard.report import dataframe_figures as figs

    path, how = sys.argv[1], sys.argv[2]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster):
        columns, _ = figs.figure_columns(dd.read_parquet(path).dtypes.to_dict())
        frame = dd.read_parquet(path, columns=columns)
        started = time.perf_counter()
        if how == "dask":
            data = figs.frame_figure_data(frame)
            corr = data.correlation
        else:
            local = frame.compute()
            for column in columns:
                values = local[column].to_numpy(dtype="float64", na_value=np.nan)
                values = values[np.isfinite(values)]
                np.histogram(values, bins=figs.BINS)
            corr = local.astype("float64").corr()
        took = time.perf_counter() - started
    print(json.dumps({"seconds": took, "peak_rss_mib":
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "columns": len(columns), "corr_00": float(corr.iloc[0, 1])}))
""")


def make_data(directory: Path, rows: int) -> None:
    sys.path.insert(0, str(ROOT / "jobs"))
    import churn_data

    (directory / "data" / "sklearn").mkdir(parents=True, exist_ok=True)
    churn_data.make_customers(rows, 42).to_parquet(directory / "data" / "customers.parquet",
                                                   row_group_size=250_000)
    churn_data.make_regions().to_parquet(directory / "data" / "regions.parquet")
    from shipyard.ml.datasets import write_datasets

    write_datasets(directory=str(directory / "data" / "sklearn"))


def job_variant(spec: Path, workdir: Path, figures: bool):
    def measure() -> float:
        env = {**os.environ, "SHIPYARD_HOME": str(workdir / "home")}
        extra = [] if figures else ["--set", "spec.report.figures=false"]
        took, status = run_json([*SHIPYARD, "run", str(spec), "--json", *extra], cwd=workdir,
                                env=env)
        if status["state"] != "SUCCEEDED":
            raise RuntimeError(f"{spec.name}: {status['state']} {status['reason']}")
        drawn = len(status["result"]["figures"])
        if bool(drawn) != figures:
            raise RuntimeError(f"{spec.name}: {drawn} figures with figures={figures}")
        return took
    return measure


def stats_variant(path: Path, how: str, memory: dict[str, list[float]]):
    def measure() -> float:
        proc = subprocess.run([sys.executable, "-c", STATS_SCRIPT, str(path), how],
                              capture_output=True, text=True, check=True)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        memory.setdefault(how, []).append(out["peak_rss_mib"])
        return out["seconds"]
    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        workdir = Path(tmp)
        began = time.perf_counter()
        make_data(workdir, args.rows)
        print(f"data: {args.rows:,} customers ({time.perf_counter() - began:.1f}s to make)")
        specs = {}
        for name in ("churn-prep", "breast-cancer-grid"):
            doc = load_yaml((ROOT / "jobs" / f"{name}.yaml").read_text())  # `on:` a key
            if name == "churn-prep":
                doc["spec"]["dataframe"]["output"]["path"] = "out/churn_features.parquet"
            specs[name] = workdir / f"{name}.yaml"
            specs[name].write_text(yaml.safe_dump(doc, sort_keys=False))
        # churn-prep's merge needs its spec beside the data: run from workdir
        variants = {}
        for name, spec in specs.items():
            variants[f"{name}: figures off"] = job_variant(spec, workdir, False)
            variants[f"{name}: figures on"] = job_variant(spec, workdir, True)
        samples = interleave(variants, args.repeats)
        for name in specs:
            off, on = f"{name}: figures off", f"{name}: figures on"
            print_table(f"{name} end to end ({args.repeats} runs)",
                        [(off, median(samples[off]), "result + report page"),
                         (on, median(samples[on]), "+ figures")], baseline=off)

        memory: dict[str, list[float]] = {}
        path = workdir / "data" / "customers.parquet"
        stats = interleave({"pull to pandas": stats_variant(path, "pandas", memory),
                            "shipyard (Dask reduction)": stats_variant(path, "dask", memory)},
                           args.repeats)
        print_table(f"histograms + correlations of the numeric columns, {args.rows:,} rows",
                    [("pull to pandas", median(stats["pull to pandas"]),
                      f"client peak RSS {median(memory['pandas']):.0f} MiB"),
                     ("shipyard (Dask reduction)", median(stats["shipyard (Dask reduction)"]),
                      f"client peak RSS {median(memory['dask']):.0f} MiB")],
                    baseline="pull to pandas")


if __name__ == "__main__":
    main()
