"""A `dataframe` job against the same preprocessing in pandas, Dask, DuckDB and Polars.

The data is TPC-H ``lineitem`` generated as Parquet by ``tpchgen-cli`` (one file, its
default ~7 MiB row groups, so every reader can split it). The work is TPC-H Q1 written
as preprocessing: keep ``l_shipdate <= 1998-09-02``, derive ``disc_price`` and
``charge``, group by ``(l_returnflag, l_linestatus)`` with sums, means and a count, and
write the 4-row result as Parquet. Five variants, each in its own subprocess:

- pandas script: ``pd.read_parquet`` of the 8 needed columns (the decimal columns cast
  to float64 while reading: pandas would otherwise make Python ``Decimal`` objects,
  several times slower), the filter, derived columns and groupby in pandas;
- hand-written dask: ``LocalCluster(n_workers=2, threads_per_worker=1,
  memory_limit="6GiB")``, ``dd.read_parquet`` with the columns, the date filter pushed
  into the reader and ``split_row_groups="adaptive", blocksize="100MiB"``;
- shipyard run: the real CLI, ``python -m shipyard run SPEC`` on a ``dataframe`` job
  (``profile: false``; ``--with-profile`` adds a labelled variant with the profile on),
  with its own ``SHIPYARD_HOME``. Its time includes submitting, the detached supervisor
  and runner, the cluster start and waiting, as a user sees it;
- duckdb: the SQL of TPC-H Q1 over ``read_parquet``, ``COPY ... TO``, default threads
  (DuckDB keeps the decimals exact; the others compute in float64);
- polars: ``scan_parquet`` ... ``sink_parquet`` (decimals cast to Float64, since Polars'
  decimal arithmetic rounds each product to the inputs' scale and would not agree).

Rounds are interleaved (each round runs every variant once, the order rotated per
round, on a warm page cache) and repeated; the table shows medians and ratios.

Wall time: from starting the subprocess to its exit.

Peak memory: every 50 ms, the summed RSS of (a) the subprocess and all its descendants
and (b) every process whose environment carries ``SHIPYARD_BENCH_RUN=<token>``, a
token unique to that run that the benchmark puts in the subprocess's environment. (b)
is what catches shipyard's processes: the CLI starts a *detached* supervisor, which
starts the runner, which starts the Dask workers - none of them descendants of the
CLI, but all inheriting its environment. RSS double-counts pages shared between
processes (libraries mapped by several Dask workers), the same way for the Dask-based
variants; the peak is reported in MiB. Before the next run starts, the benchmark waits
for every process of the previous one to be gone.

Results: after every run, its output is read back and compared with the pandas
script's (rows sorted by the keys; floats to a relative 1e-9, counts exactly). A
variant that fails or disagrees is reported in the table, its error printed, and the
benchmark exits 1.

Targets: ``shipyard run`` faster than the pandas script; its peak memory at most half
the pandas script's; its time within 1.2x of the hand-written Dask script.

Data: generated once per scale factor into ``--data-dir`` (default
``$SHIPYARD_BENCH_DATA`` or ``/tmp/shipyard-bench-tpch``) as ``sf<N>/lineitem.parquet``.
tpchgen-cli writes the text columns as Arrow ``string_view``, which pyarrow 26 cannot
filter row by row: a reader that pushes the date filter down fails on it (the Dask
script therefore has the reader cast them to ``string``). ``--plain-strings`` runs every
variant on a copy with plain ``string`` columns instead (``sf<N>-plain/``, the same row
groups), for a shipyard that does not cast them itself.

Run::

    .venv/bin/python tests/bench/bench_dataframe.py [--scale 1 10] [--repeats 3]
        [--data-dir DIR] [--with-profile] [--plain-strings]

SF1 is 6 million rows (~220 MiB of Parquet), SF10 60 million (~2.2 GiB, several
minutes a round on two cores). Fractional scales (``--scale 0.1``) work for a quick try.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from timing import SHIPYARD, median  # noqa: E402

THIS_SCRIPT = Path(__file__).resolve()
MiB = 2**20

# -- the work, shared by every variant ----------------------------------------------------

CUTOFF = datetime.date(1998, 9, 2)  # TPC-H Q1: DATE '1998-12-01' - INTERVAL 90 DAY
KEYS = ["l_returnflag", "l_linestatus"]
DECIMALS = ["l_quantity", "l_extendedprice", "l_discount", "l_tax"]
COLUMNS = ["l_orderkey", *DECIMALS, *KEYS, "l_shipdate"]
#: output column -> (input column, function); named as shipyard names them
AGGREGATIONS = {
    "l_quantity_sum": ("l_quantity", "sum"),
    "l_quantity_mean": ("l_quantity", "mean"),
    "l_extendedprice_sum": ("l_extendedprice", "sum"),
    "l_extendedprice_mean": ("l_extendedprice", "mean"),
    "disc_price_sum": ("disc_price", "sum"),
    "charge_sum": ("charge", "sum"),
    "l_discount_mean": ("l_discount", "mean"),
    "l_orderkey_count": ("l_orderkey", "count"),
}
COUNTS = [name for name, (_, function) in AGGREGATIONS.items() if function == "count"]
FLOATS = [name for name in AGGREGATIONS if name not in COUNTS]
RELATIVE_TOLERANCE = 1e-9

BASELINE, DASK, SHIPYARD_RUN = "pandas script", "hand-written dask", "shipyard run"
SHIPYARD_PROFILED = "shipyard run (profile on)"


def shipyard_spec(source: Path, output: Path, profile: bool) -> dict:
    """The job spec: the same steps as the scripts below, in shipyard's vocabulary."""
    agg: dict[str, list[str]] = {}
    for column, function in AGGREGATIONS.values():
        agg.setdefault(column, []).append(function)
    return {
        "apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "tpch-prep"},
        "spec": {
            "resources": {"workers": 2, "threads_per_worker": 1, "memory_per_worker": "6GiB"},
            "dataframe": {
                "inputs": {"main": {"path": str(source)}},
                "steps": [
                    {"query": f"l_shipdate <= '{CUTOFF.isoformat()}'"},
                    {"assign": {"disc_price": "l_extendedprice * (1 - l_discount)",
                                "charge": "l_extendedprice * (1 - l_discount) * (1 + l_tax)"}},
                    {"groupby": {"by": KEYS, "agg": agg}},
                ],
                "output": {"path": str(output), "overwrite": True},
                "profile": profile,
            },
        },
    }


# -- the hand-written variants; each runs in its own subprocess (``--run-variant``) --------

def _float_schema(source: str):
    """The file's schema with decimals as float64 and string_view as string, for the
    Arrow reader to cast to while it scans (cheap there, slow once in pandas)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def wanted(arrow_type):
        if pa.types.is_decimal(arrow_type):
            return pa.float64()
        if arrow_type == pa.string_view():
            return pa.string()  # pyarrow 26 cannot filter string_view rows
        return arrow_type

    return pa.schema([pa.field(f.name, wanted(f.type)) for f in pq.read_schema(source)])


def q1_pandas(source: str, target: str) -> None:
    import pandas as pd

    frame = pd.read_parquet(source, columns=COLUMNS, schema=_float_schema(source),
                            to_pandas_kwargs={"date_as_object": False})  # datetime64
    frame = frame[frame["l_shipdate"] <= pd.Timestamp(CUTOFF)]
    disc_price = frame["l_extendedprice"] * (1 - frame["l_discount"])
    frame = frame.assign(disc_price=disc_price, charge=disc_price * (1 + frame["l_tax"]))
    result = frame.groupby(KEYS, sort=True, observed=True).agg(**AGGREGATIONS)
    result.reset_index().to_parquet(target, index=False)


def q1_dask(source: str, target: str) -> None:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="6GiB",
                      dashboard_address=":0") as cluster, Client(cluster):
        frame = dd.read_parquet(source, columns=COLUMNS,
                                filters=[("l_shipdate", "<=", CUTOFF)],  # rows and row groups
                                split_row_groups="adaptive", blocksize="100MiB",
                                dataset={"schema": _float_schema(source)})
        disc_price = frame["l_extendedprice"] * (1 - frame["l_discount"])
        frame = frame.assign(disc_price=disc_price, charge=disc_price * (1 + frame["l_tax"]))
        result = frame.groupby(KEYS).agg(**AGGREGATIONS)
        # four rows: gather them and write one file, as one would
        result.compute().sort_index().reset_index().to_parquet(target, index=False)


def q1_duckdb(source: str, target: str) -> None:
    import duckdb

    sql = {"sum": "sum", "mean": "avg", "count": "count"}
    expressions = {"disc_price": "l_extendedprice * (1 - l_discount)",
                   "charge": "l_extendedprice * (1 - l_discount) * (1 + l_tax)"}
    selects = ",\n".join(f"{sql[function]}({expressions.get(column, column)}) AS {name}"
                         for name, (column, function) in AGGREGATIONS.items())
    quoted = {name: "'" + str(path).replace("'", "''") + "'"
              for name, path in (("source", source), ("target", target))}
    duckdb.connect().execute(f"""
        COPY (
            SELECT {", ".join(KEYS)}, {selects}
            FROM read_parquet({quoted["source"]})
            WHERE l_shipdate <= DATE '{CUTOFF.isoformat()}'
            GROUP BY {", ".join(KEYS)}
            ORDER BY {", ".join(KEYS)}
        ) TO {quoted["target"]} (FORMAT parquet)
    """)


def q1_polars(source: str, target: str) -> None:
    import polars as pl

    disc_price = pl.col("l_extendedprice") * (1 - pl.col("l_discount"))
    (pl.scan_parquet(source)
     .filter(pl.col("l_shipdate") <= CUTOFF)
     .with_columns(pl.col(DECIMALS).cast(pl.Float64))
     .with_columns(disc_price=disc_price, charge=disc_price * (1 + pl.col("l_tax")))
     .group_by(KEYS)
     .agg(**{name: getattr(pl.col(column), function)()
             for name, (column, function) in AGGREGATIONS.items()})
     .sort(KEYS)
     .sink_parquet(target))


SCRIPTS = {BASELINE: q1_pandas, DASK: q1_dask, "duckdb": q1_duckdb, "polars": q1_polars}


# -- data ----------------------------------------------------------------------------------

@dataclass
class Dataset:
    scale: float
    path: Path
    rows: int
    row_groups: int
    size: int

    @property
    def label(self) -> str:
        return f"SF{self.scale:g}"


def _tpchgen() -> str:
    beside = Path(sys.executable).parent / "tpchgen-cli"
    found = str(beside) if beside.exists() else shutil.which("tpchgen-cli")
    if not found:
        sys.exit("tpchgen-cli not found: install the bench extra (make bench)")
    return found


def _generate(scale: float, folder: Path) -> None:
    """tpchgen-cli's lineitem into ``folder`` (made whole or not at all)."""
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"generating TPC-H lineitem SF{scale:g} into {folder} ...", file=sys.stderr)
    subprocess.run([_tpchgen(), "parquet", "-s", f"{scale:g}", "--tables=lineitem",
                    f"--output-dir={partial}", "--no-progress"], check=True)
    partial.rename(folder)


def _copy_with_plain_strings(source: Path, folder: Path) -> None:
    """``source`` rewritten row group by row group, string_view columns as string."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    reader = pq.ParquetFile(source)
    schema = pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f
                        for f in reader.schema_arrow])
    with pq.ParquetWriter(partial / source.name, schema, compression="snappy") as writer:
        for index in range(reader.num_row_groups):
            writer.write_table(reader.read_row_group(index).cast(schema),
                               row_group_size=reader.metadata.row_group(index).num_rows)
    partial.rename(folder)


def prepare(data_dir: Path, scale: float, plain_strings: bool) -> Dataset:
    generated = data_dir / f"sf{scale:g}"
    if not (generated / "lineitem.parquet").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _generate(scale, generated)
    folder = generated
    if plain_strings:
        folder = data_dir / f"sf{scale:g}-plain"
        if not (folder / "lineitem.parquet").exists():
            _copy_with_plain_strings(generated / "lineitem.parquet", folder)
    import pyarrow.parquet as pq

    path = folder / "lineitem.parquet"
    meta = pq.ParquetFile(path).metadata
    return Dataset(scale, path, meta.num_rows, meta.num_row_groups, path.stat().st_size)


def _warm_page_cache(path: Path) -> None:
    """Read the file once, so the first variant measured does not pay for the disk."""
    with open(path, "rb") as handle:
        while handle.read(16 * MiB):
            pass


# -- measuring one run ---------------------------------------------------------------------

MARKER = "SHIPYARD_BENCH_RUN"


class PeakMemory(threading.Thread):
    """Samples the summed RSS of ``root``'s process tree and of every process whose
    environment has ``MARKER=token``; keeps the largest sum."""

    def __init__(self, root: psutil.Process, token: str, interval: float = 0.05):
        super().__init__(daemon=True)
        self.root, self.token, self.interval = root, token, interval
        self.peak = 0
        self._marked: dict[psutil.Process, bool] = {}  # environments never change: ask once
        self._done = threading.Event()  # (not _stop: threading.Thread has one)

    def members(self) -> set[psutil.Process]:
        found = {self.root}
        try:
            found.update(self.root.children(recursive=True))
        except psutil.Error:
            pass
        for proc in psutil.process_iter():
            if proc not in self._marked:
                try:
                    self._marked[proc] = proc.environ().get(MARKER) == self.token
                except psutil.Error:  # gone, a zombie, or not ours
                    self._marked[proc] = False
            if self._marked[proc]:
                found.add(proc)
        return found

    def sample(self) -> None:
        total = 0
        for proc in self.members():
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


@dataclass
class Run:
    seconds: float
    peak: int          # bytes
    returncode: int
    log: Path          # the subprocess's stdout and stderr


def measure(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> Run:
    """Run ``command`` to its end, timing it and sampling its peak memory."""
    token = uuid.uuid4().hex
    env = dict(env, **{MARKER: token})
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        sampler = PeakMemory(psutil.Process(proc.pid), token)
        sampler.start()
        returncode = proc.wait()
        seconds = time.perf_counter() - start
        sampler.stop()
    _wait_for_leftovers(sampler)
    return Run(seconds, sampler.peak, returncode, log)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_for_leftovers(sampler: PeakMemory, timeout: float = 60.0) -> None:
    """Let the run's last processes (shipyard's supervisor, Dask workers) end before the
    next run starts, so they neither compete with it nor count in its memory."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in sampler.members() if _alive(p)]
        if not alive:
            return
        time.sleep(0.1)
    print(f"warning: still running {timeout:.0f} s after the run ended: "
          f"{sorted(p.pid for p in alive)}", file=sys.stderr)


# -- results -------------------------------------------------------------------------------

def read_result(path: Path):
    """An output as a pandas frame: keys as str, sums and means float, counts int."""
    import pandas as pd

    frame = pd.read_parquet(path)  # a file, or shipyard's directory of parts
    missing = [c for c in [*KEYS, *AGGREGATIONS] if c not in frame.columns]
    if missing:
        raise AssertionError(f"{path}: missing columns {missing} (has {list(frame.columns)})")
    frame = frame[[*KEYS, *AGGREGATIONS]].astype(
        {**{k: str for k in KEYS}, **{c: "float64" for c in FLOATS},
         **{c: "int64" for c in COUNTS}})
    return frame.sort_values(KEYS).reset_index(drop=True)


def differences(expected, actual) -> list[str]:
    """How ``actual`` differs from ``expected`` (empty when they agree)."""
    if expected[KEYS].values.tolist() != actual[KEYS].values.tolist():
        return [f"groups {actual[KEYS].values.tolist()}, expected "
                f"{expected[KEYS].values.tolist()}"]
    found = []
    for row in range(len(expected)):
        group = "/".join(expected.loc[row, KEYS])
        for column in AGGREGATIONS:
            want, got = expected.loc[row, column], actual.loc[row, column]
            same = (want == got if column in COUNTS
                    else math.isclose(want, got, rel_tol=RELATIVE_TOLERANCE))
            if not same:
                found.append(f"{group} {column}: {got}, expected {want}")
    return found


# -- the benchmark -------------------------------------------------------------------------

@dataclass
class Variant:
    name: str
    command: Callable[[Path], list[str]]  # the output path -> the argv to run
    env: dict[str, str]
    runs: list[Run] = field(default_factory=list)
    problem: str | None = None   # why it failed or disagreed; the first one only

    @property
    def ok(self) -> bool:
        return self.problem is None


def _shipyard_job_id(log: Path) -> str | None:
    match = re.search(r"\[shipyard\] submitted (\S+)", log.read_text(errors="replace"))
    return match.group(1) if match else None


def _shipyard_failure(log: Path, env: dict[str, str]) -> str:
    """What went wrong in a shipyard run: the CLI's output and the job's full log."""
    text = f"`shipyard run` output (end):\n{log.read_text(errors='replace')[-1500:]}"
    job_id = _shipyard_job_id(log)
    if job_id:
        logs = subprocess.run([*SHIPYARD, "logs", job_id], env=env, capture_output=True,
                              text=True)
        text += f"\n`shipyard logs {job_id}` (end):\n{(logs.stdout + logs.stderr)[-8000:]}"
    return text


def make_variants(data: Dataset, work: Path, with_profile: bool) -> list[Variant]:
    home = work / "shipyard-home"
    plain_env = {k: v for k, v in os.environ.items() if k != "SHIPYARD_HOME"}
    shipyard_env = dict(plain_env, SHIPYARD_HOME=str(home))

    def script(name: str):
        return lambda output: [sys.executable, str(THIS_SCRIPT), "--run-variant", name,
                               str(data.path), str(output)]

    def shipyard(profile: bool):
        def command(output: Path) -> list[str]:
            spec = output.parent / "job.yaml"
            spec.write_text(yaml.safe_dump(shipyard_spec(data.path, output, profile),
                                           sort_keys=False))
            return [*SHIPYARD, "run", str(spec)]
        return command

    variants = [Variant(BASELINE, script(BASELINE), plain_env),
                Variant(DASK, script(DASK), plain_env),
                Variant(SHIPYARD_RUN, shipyard(False), shipyard_env)]
    if with_profile:
        variants.append(Variant(SHIPYARD_PROFILED, shipyard(True), shipyard_env))
    variants += [Variant("duckdb", script("duckdb"), plain_env),
                 Variant("polars", script("polars"), plain_env)]
    return variants


def run_once(variant: Variant, work: Path, round_no: int, reference):
    """One measured run of ``variant``, its output checked against ``reference`` (when
    there is one yet). Returns the output, read, or None when the run failed."""
    folder = work / "runs" / f"{variant.name.replace(' ', '-')}-{round_no}"
    folder.mkdir(parents=True)
    output = folder / "q1.parquet"
    cwd = folder / "cwd"
    cwd.mkdir()
    run = measure(variant.command(output), variant.env, cwd, folder / "output.log")
    if run.returncode != 0:
        detail = (_shipyard_failure(run.log, variant.env) if variant.name.startswith("shipyard")
                  else run.log.read_text(errors="replace")[-4000:])
        variant.problem = f"FAILED (exit {run.returncode})"
        print(f"\n{variant.name} FAILED (exit {run.returncode}):\n{detail}", file=sys.stderr)
        return None
    variant.runs.append(run)
    print(f"  {variant.name:<26} {run.seconds:8.2f} s  {run.peak / MiB:9,.0f} MiB peak",
          file=sys.stderr)
    try:
        result = read_result(output)
    except (OSError, ValueError, AssertionError) as err:
        variant.problem = "unreadable output"
        print(f"\n{variant.name}: cannot read its output {output}: {err}", file=sys.stderr)
        return None
    if reference is not None:
        name, expected = reference
        wrong = differences(expected, result)
        if wrong:
            variant.problem = f"results differ from {name}'s"
            print(f"\n{variant.name}: results differ from the {name}'s:\n  "
                  + "\n  ".join(wrong), file=sys.stderr)
            return None
    return result


def benchmark(data: Dataset, repeats: int, with_profile: bool) -> list[Variant]:
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-df-"))
    variants = make_variants(data, work, with_profile)
    _warm_page_cache(data.path)
    # every output is compared with the first one read: the pandas script's, which
    # runs first (unless it failed; then the next variant's)
    reference = None
    try:
        for round_no in range(repeats):
            print(f"{data.label} round {round_no + 1} of {repeats}", file=sys.stderr)
            shift = round_no % len(variants)  # rotate, so no variant always goes first
            for variant in variants[shift:] + variants[:shift]:
                if not variant.ok:
                    continue  # failed or wrong once: its numbers mean nothing
                result = run_once(variant, work, round_no, reference)
                if reference is None and result is not None:
                    reference = (variant.name, result)
    finally:
        if all(v.ok for v in variants):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work} (each run's output and log, SHIPYARD_HOME) for a look",
                  file=sys.stderr)
    return variants


def report(data: Dataset, variants: list[Variant], repeats: int) -> None:
    by_name = {v.name: v for v in variants}

    def medians(name: str) -> tuple[float, float] | None:
        variant = by_name.get(name)
        if variant is None or not variant.ok or not variant.runs:
            return None
        return (median([r.seconds for r in variant.runs]),
                median([r.peak / MiB for r in variant.runs]))

    def ratio(value: float, base: tuple[float, float] | None, index: int) -> str:
        return f"{value / base[index]:.2f}x" if base else "-"

    base, dask = medians(BASELINE), medians(DASK)
    size = (f"{data.size / 2**30:.1f} GiB" if data.size >= 2**30 else f"{data.size / MiB:.0f} MiB")
    print(f"\nTPC-H lineitem {data.label} ({data.rows:,} rows, {data.row_groups} row groups, "
          f"{size} Parquet), {repeats} interleaved runs each, medians")
    print(f"{'variant':<26} {'wall s':>8} {'vs pandas':>10} {'vs dask':>8} {'peak MiB':>10} "
          f"{'mem vs pandas':>14}  note")
    for variant in variants:
        got = medians(variant.name)
        if got is None:
            print(f"{variant.name:<26} {'-':>8} {'-':>10} {'-':>8} {'-':>10} {'-':>14}  "
                  f"{variant.problem}")
            continue
        seconds, peak = got
        print(f"{variant.name:<26} {seconds:>8.2f} {ratio(seconds, base, 0):>10} "
              f"{ratio(seconds, dask, 0):>8} {peak:>10,.0f} {ratio(peak, base, 1):>14}")
    job = medians(SHIPYARD_RUN)
    if job is None:
        print(f"targets: n/a ({SHIPYARD_RUN}: {by_name[SHIPYARD_RUN].problem})")
        return

    def verdict(condition: bool | None) -> str:
        return "n/a" if condition is None else ("yes" if condition else "no")

    print("targets: "
          f"shipyard faster than pandas: {verdict(base and job[0] < base[0])}; "
          f"peak <= 0.5x pandas: {verdict(base and job[1] <= 0.5 * base[1])}; "
          f"within 1.2x of hand-written dask: {verdict(dask and job[0] <= 1.2 * dask[0])}")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--run-variant":  # inside a measured subprocess
        SCRIPTS[sys.argv[2]](sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, nargs="+", default=[1, 10],
                        help="TPC-H scale factors (default: 1 10)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path(
        os.environ.get("SHIPYARD_BENCH_DATA") or "/tmp/shipyard-bench-tpch"))
    parser.add_argument("--with-profile", action="store_true",
                        help="also run the shipyard job with profile: true")
    parser.add_argument("--plain-strings", action="store_true",
                        help="use a copy of the data with string columns instead of "
                             "tpchgen-cli's string_view")
    args = parser.parse_args()

    failed = False
    for scale in args.scale:
        data = prepare(args.data_dir, scale, args.plain_strings)
        variants = benchmark(data, args.repeats, args.with_profile)
        report(data, variants, args.repeats)
        failed = failed or not all(v.ok for v in variants)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
