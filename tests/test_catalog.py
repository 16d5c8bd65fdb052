"""The catalog as a user runs it: every job of jobs/*.yaml, its spec as shipped, through
`python -m shipyard run SPEC --sample F --json` (issue 16: documented paths failed while
the suite, which writes its own specs, was green).

The jobs run in one temporary working directory with its own SHIPYARD_HOME, as a user
runs them from a checkout, several at a time: the data jobs (jobs/sklearn-datasets.yaml,
jobs/churn-data.yaml) write under data/, relative to the working directory, and the jobs
that read it start once it is written. `run` validates a spec, its inputs read from
data/, before it submits anything, so a run that succeeds is a spec that validates. Each
run's result.json is checked for the shape of its workload and for what the sample did.

Every job found by the glob is run here or named in RUN_ELSEWHERE, the tests that already
run its shipped spec; a new catalog file without a trial plan fails here, naming it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest

import shipyard
from shipyard.spec.yamlio import load_yaml
from helpers import ROOT, shipyard as cli

JOBS = ROOT / "jobs"
CATALOG = sorted(path.name for path in JOBS.glob("*.yaml"))

#: Jobs whose shipped spec another test already runs with `shipyard run`: job -> the
#: test (file::name). test_the_jobs_run_elsewhere_are_still_run_there checks, by reading
#: that test, that it still exists, runs this spec and changes nothing in it, so a rename
#: or an edit cannot drop the coverage silently.
RUN_ELSEWHERE = {
    # its train loop loads scikit-learn's digits itself (no torch.data), so --sample does
    # not reach it: a trial run is the full 20-epoch run, which test_train_jobs makes
    # (and checks to 95% accuracy and a reloaded model) already
    "digits-cnn.yaml": "test_train_jobs.py::"
                       "test_digits_trains_to_95_percent_and_the_saved_model_reproduces_it",
    # run as shipped on rows of churn-data's own generator and compared with pandas; the
    # quickstart's trial here runs that generator as a job, and most of churn-prep's
    # steps on what it wrote, on a sample
    "churn-rates.yaml": "test_dataframe_jobs.py::test_the_churn_example_equals_pandas",
    "churn-prep.yaml": "test_dataframe_jobs.py::test_churn_features_job",
}


#: How many runs at once. A trial run spends much of its time waiting (on its processes
#: and clusters starting, on Ray placing workers); three at once keep 2 cores busy (the
#: module used 1.9 cores on average), so more would only queue for the same cores and
#: memory (each run is half a dozen processes and a cluster).
AT_ONCE = 3
#: Only stops a run that hangs (a trial run here takes a minute or two on a busy machine).
RUN_TIMEOUT = 600


@dataclass(frozen=True)
class Trial:
    """How this module runs one catalog job: ``sample`` is the --sample fraction, and
    ``check(run)`` looks at what the run left."""

    sample: float
    check: Callable[[Run], None]
    #: the data job whose output the job reads: it starts once that one succeeded
    after: str | None = None


@dataclass
class Run:
    """One finished `shipyard run --json` of a catalog job."""

    name: str
    trial: Trial
    work: Path
    proc: subprocess.CompletedProcess

    @property
    def spec(self) -> dict[str, Any]:
        return load_yaml((JOBS / self.name).read_text())  # `on:` stays a key

    @property
    def status(self) -> dict[str, Any]:
        return json.loads(self.proc.stdout)

    @property
    def result(self) -> dict[str, Any]:
        """The pipeline's result.json (a single job with --sample runs as a one-stage
        pipeline)."""
        return self.status["result"]

    @property
    def stage(self) -> dict[str, Any]:
        """The result.json of the job itself: the one stage of its trial pipeline."""
        stages = self.result["stages"]
        assert len(stages) == 1, stages
        return next(iter(stages.values()))["result"]

    def failure(self) -> str:
        """How the run ended, stage by stage, for an assertion message."""
        try:
            status = self.status
        except ValueError:  # not a JSON document: the command itself failed
            return f"{self.name}: exit {self.proc.returncode}\n{self.proc.stderr[-3000:]}"
        stages = {name: (stage["state"], stage.get("reason"))
                  for name, stage in (status.get("stages") or {}).items()}
        return (f"{self.name}: exit {self.proc.returncode}, {status['state']}: "
                f"{status['reason']}; stages {stages}\n{self.proc.stderr[-3000:]}")

    @property
    def sample_dir(self) -> Path:
        """Where README says a trial run's stages write: ``runs/<id>/sample/``."""
        return self.work / "home" / "runs" / self.status["id"] / "sample"


# -- the checks, one per workload, and the jobs' own ------------------------------------


def check_python(run: Run) -> dict[str, Any]:
    result = run.stage
    assert result["workload"] == "python"
    for path in result["outputs"]:
        assert Path(path).exists(), path
    return result["value"]


def check_sklearn(run: Run) -> dict[str, Any]:
    """Every model of the spec was searched and scored on the sampled rows."""
    result = run.stage
    block = run.spec["spec"]["sklearn"]
    assert result["workload"] == "sklearn"
    assert result["task"] == block.get("task", "classification")
    models = result["models"]
    assert list(models) == [m["name"] for m in block["models"]]
    assert result["best_model"] in models
    stored = len(pd.read_parquet(run.work / block["input"]["path"]))
    assert abs(result["rows"]["input"] - run.trial.sample * stored) <= 1, result["rows"]
    if result["task"] == "clustering":
        assert all(-1 <= m["silhouette"] <= 1 for m in models.values()), models
        return result
    cv = block["search"]["cv"]
    for name, model in models.items():
        assert len(model["cv_scores"]) == cv, (name, model["cv_scores"])
        assert model["test_metrics"], name
    if result["task"] == "regression":
        assert {"mae", "rmse", "r2"} <= set(models[result["best_model"]]["test_metrics"])
    else:
        assert all(0 <= m["test_metrics"]["accuracy"] <= 1 for m in models.values())
    assert Path(result["artifacts"]["model"]).is_file()
    return result


def check_torch(run: Run) -> dict[str, Any]:
    """Every epoch trained on the sampled rows; the model was saved."""
    result = run.stage
    block = run.spec["spec"]["torch"]
    assert result["workload"] == "torch"
    assert [m["epoch"] for m in result["metrics"]] == list(range(block["config"]["epochs"]))
    assert 0 <= result["test_metrics"]["test_accuracy"] <= 1
    assert Path(result["artifacts"]["model_state_dict"]).is_file()
    return result


def check_sklearn_datasets(run: Run) -> None:
    from shipyard.ml.datasets import DATASETS, dataset_frame

    value = check_python(run)
    # written whole, whatever the share: each is small, and its readers sample it
    assert {name: value[name]["rows"] for name in DATASETS} == {
        name: len(dataset_frame(name)) for name in DATASETS}
    for name in DATASETS:
        assert len(pd.read_parquet(run.work / "data" / "sklearn" / f"{name}.parquet")) \
            == value[name]["rows"]


def check_churn_data(run: Run) -> None:
    value = check_python(run)
    params = run.spec["spec"]["python"]["params"]
    rows = int(params["rows"] * run.trial.sample)
    assert value == {"rows": rows, "partitions": params["partitions"]}
    # where its parameters say (README: a python job writes there in a trial run too)
    customers = pd.read_parquet(run.work / params["output_dir"] / "customers.parquet")
    assert len(customers) == rows and customers["customer_id"].is_unique


def check_basics(run: Run) -> None:
    value = check_python(run)
    params = run.spec["spec"]["python"]["params"]
    assert value["rows"] == int(params["rows"] * run.trial.sample)
    assert value["partitions"] == 8  # as many as the full run: 1,000,000 / 125,000
    assert value["normalised"]["max_abs_mean"] < 1e-9
    assert sum(group["rows"] for group in value["by_group"]) == value["rows"]
    normalised = pd.read_parquet(run.work / params["output"] / "normalised.parquet")
    assert len(normalised) == value["rows"]


def check_breast_cancer_grid(run: Run) -> None:
    result = check_sklearn(run)
    scored = result["batch_predict"]
    # batch_predict's input is sampled as the training input is, its output moved
    assert scored["rows"] == result["rows"]["input"]
    assert Path(scored["path"]).parent == run.sample_dir / "sklearn"
    assert len(pd.read_parquet(scored["path"])) == scored["rows"]
    assert not (run.work / "out" / "breast_cancer_scored.parquet").exists()


def check_digits_mlp(run: Run) -> None:
    result = check_torch(run)
    data = run.spec["spec"]["torch"]["data"]
    rows = len(pd.read_parquet(run.work / data["path"]))
    trained = result["metrics"][0]["samples"]
    # the sample's training rows (Ray Data keeps each row by chance: ~4% either way);
    # the whole table would be 4 times as many
    assert trained == pytest.approx(run.trial.sample * rows * (1 - data["validation"]),
                                    rel=0.2)


def check_quickstart(run: Run) -> None:
    """README's trial run of the main job: every stage on 1% of its data, the outputs
    under the run's sample/ directory, the real ones and the cache left alone, no
    figures; the feature table equals pandas on the same rows; models and network at
    the same time."""
    from pandas_reference import assert_same, run_steps

    stages = run.result["stages"]
    assert {n: s["state"] for n, s in stages.items()} == {
        "data": "SUCCEEDED", "features": "SUCCEEDED", "models": "SUCCEEDED",
        "network": "SUCCEEDED"}
    assert not any(s["cached"] for s in stages.values())
    assert run.result["figures"] == []  # a trial run draws none unless the spec asks
    spec = run.spec["spec"]["stages"]
    assert stages["data"]["result"]["value"]["rows"] == int(
        spec[0]["python"]["params"]["rows"] * run.trial.sample)
    for name in ("data", "features"):
        assert Path(stages[name]["output"]).parent == run.sample_dir / name
    assert not (run.work / "data" / "quickstart").exists()
    assert not (run.work / "out" / "quickstart").exists()
    assert not list((run.work / "home" / "cache" / "stages").glob("*.json"))

    data = Path(stages["data"]["output"])
    expected = run_steps(pd.read_parquet(data / "customers.parquet"),
                         spec[1]["dataframe"]["steps"],
                         {"regions": pd.read_parquet(data / "regions.parquet")})
    assert_same(pd.read_parquet(stages["features"]["output"]), expected, sort=True)

    models = stages["models"]["result"]
    assert list(models["models"]) == [m["name"] for m in spec[2]["sklearn"]["models"]]
    assert len(models["comparisons"]) == 3
    assert all(0.5 < m["cv_mean"] <= 1 for m in models["models"].values())
    network = stages["network"]["result"]
    assert len(network["metrics"]) == spec[3]["torch"]["config"]["epochs"]
    # 20% of the sample's 10,000 rows, less the 20% held out: ~1,600 rows, 800 on each of
    # the 2 workers (a batch of 512 and a shorter one), every one trained on
    assert 1400 < network["metrics"][0]["samples"] < 1800, network["metrics"]
    assert 0 <= network["test_metrics"]["test_accuracy"] <= 1
    times = {n: (stages[n]["started_at"], stages[n]["finished_at"]) for n in ("models", "network")}
    assert times["models"][0] < times["network"][1] and times["network"][0] < times["models"][1]


#: The catalog jobs run here, started in this order (the longest first, so that none is
#: left to run alone at the end; the data jobs before the jobs that read what they
#: write). Fractions: a small share that still runs the job the way the full run does
#: (every class in a stratified split and in each CV fold, every partition); a trial
#: run's fixed costs (processes, clusters) outweigh its rows anyway.
TRIALS: dict[str, Trial] = {
    # the datasets are written whole whatever the share (see check_sklearn_datasets)
    "sklearn-datasets.yaml": Trial(0.01, check_sklearn_datasets),
    # README's command: `shipyard run jobs/quickstart.yaml --sample 0.01`
    "quickstart.yaml": Trial(0.01, check_quickstart),
    # a quarter of 1797 images: ~450 rows, ~360 to train on in batches of 64 per worker
    "digits-mlp.yaml": Trial(0.25, check_digits_mlp, after="sklearn-datasets.yaml"),
    # a quarter of 1797 images: 449, 359 to search on; the last halving round's 5 folds
    # still hold every digit
    "digits-halving.yaml": Trial(0.25, check_sklearn, after="sklearn-datasets.yaml"),
    # a quarter of 569 tumours: 142, 28 held out, both diagnoses in every CV fold
    "breast-cancer-grid.yaml": Trial(0.25, check_breast_cancer_grid,
                                     after="sklearn-datasets.yaml"),
    # half of 178 wines: a stratified 25% test split and 5 folds keep all 3 cultivars
    "wine-random.yaml": Trial(0.5, check_sklearn, after="sklearn-datasets.yaml"),
    # a quarter of 442 patients: 110, 22 held out, 5 folds of about 18
    "diabetes-regression.yaml": Trial(0.25, check_sklearn, after="sklearn-datasets.yaml"),
    # 10,000 of its 1,000,000 customers, in its 8 partitions, as in the quickstart's trial
    "churn-data.yaml": Trial(0.01, check_churn_data),
    # 10,000 of its 1,000,000 rows, in its 8 partitions
    "basics.yaml": Trial(0.01, check_basics),
    # half of 178 wines: DBSCAN's min_samples of 10 still finds clusters
    "wine-clustering.yaml": Trial(0.5, check_sklearn, after="sklearn-datasets.yaml"),
}


# -- running them ------------------------------------------------------------------------


class Trials:
    """The catalog's trial runs, at most AT_ONCE at a time, in TRIALS' order; a job that
    reads a data job's output starts once that one succeeded."""

    def __init__(self, work: Path):
        self.work = work
        # a trial run draws no figures unless the spec asks: nothing to turn off here
        self.env = {**os.environ, "SHIPYARD_HOME": str(work / "home")}
        self.pool = ThreadPoolExecutor(max_workers=AT_ONCE, thread_name_prefix="catalog")
        self.runs: dict[str, Future] = {}
        self._starter = threading.Thread(target=self._start_all, name="catalog-starter")
        self._starter.start()

    def _start_all(self) -> None:
        for name, trial in TRIALS.items():
            if trial.after is not None and not self._succeeded(trial.after):
                continue  # it would only fail for want of the data
            self.runs[name] = self.pool.submit(self._run, name)

    def _succeeded(self, name: str) -> bool:
        try:
            return self.runs[name].result().proc.returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _run(self, name: str) -> Run:
        trial = TRIALS[name]
        proc = cli("run", str(JOBS / name), "--sample", str(trial.sample), "--json",
                   cwd=self.work, env=self.env, timeout=RUN_TIMEOUT)
        return Run(name, trial, self.work, proc)

    def result(self, name: str) -> Run:
        """The run of ``name``, once it ended."""
        self._starter.join()
        if name not in self.runs:
            data = self.runs[TRIALS[name].after].result()
            pytest.fail(f"{name} was not run: {data.failure()}")
        return self.runs[name].result()

    def close(self) -> None:
        self._starter.join()
        self.pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    started = Trials(tmp_path_factory.mktemp("catalog"))
    yield started
    started.close()


# -- the tests -----------------------------------------------------------------------------


def test_every_catalog_job_is_run_here_or_elsewhere():
    assert len(CATALOG) >= 13, CATALOG  # the glob found the catalog
    assert not set(TRIALS) & set(RUN_ELSEWHERE)
    stale = sorted((set(TRIALS) | set(RUN_ELSEWHERE)) - set(CATALOG))
    assert not stale, f"no such catalog job any more: {stale}"
    order = list(TRIALS)
    assert all(order.index(t.after) < order.index(name)
               for name, t in TRIALS.items() if t.after), "a data job starts after its readers"
    # the jobs without a plan fail test_a_catalog_job_runs_on_a_sample, by name


def _runs_the_shipped_spec(test_file: Path, test_name: str, job: str) -> list[str]:
    """What keeps ``test_file::test_name`` from counting as a run of ``jobs/<job>`` as
    shipped: it is missing or skipped, it does not run that spec (``cli("run", SPEC)``
    as `shipyard run` does, or ``shipyard.run(SPEC)``), or it changes it (--set,
    overrides)."""
    tree = ast.parse(test_file.read_text())
    found = [node for node in tree.body
             if isinstance(node, ast.FunctionDef) and node.name == test_name]
    if not found:
        return [f"{test_file.name} has no test {test_name}"]
    test = found[0]
    marks = [*test.decorator_list, *(node.value for node in tree.body
                                     if isinstance(node, ast.Assign) and "pytestmark"
                                     in [getattr(t, "id", None) for t in node.targets])]
    problems = [f"{test_name} is marked {ast.unparse(mark)}" for mark in marks
                if "skip" in ast.unparse(mark) or "xfail" in ast.unparse(mark)]
    # the module's names for the spec's path, such as DIGITS = str(ROOT / "jobs" / job)
    names = {target.id for node in tree.body if isinstance(node, ast.Assign)
             and job in ast.unparse(node.value)
             for target in node.targets if isinstance(target, ast.Name)}

    def names_the_spec(arg: ast.expr) -> bool:
        return (isinstance(arg, ast.Name) and arg.id in names) or job in ast.unparse(arg)

    def runs_it(call: ast.Call) -> bool:
        by_cli = (any(isinstance(a, ast.Constant) and a.value == "run" for a in call.args)
                  and any(names_the_spec(a) for a in call.args))
        by_api = (ast.unparse(call.func) == "shipyard.run" and bool(call.args)
                  and names_the_spec(call.args[0]))
        return by_cli or by_api

    runs = [call for call in ast.walk(test) if isinstance(call, ast.Call) and runs_it(call)]
    if not runs:
        problems.append(f"{test_name} does not run {job}")
    for call in runs:
        if any(isinstance(a, ast.Constant) and a.value == "--set" for a in call.args) \
                or any(k.arg == "overrides" for k in call.keywords):
            problems.append(f"{test_name} changes {job}: {ast.unparse(call)}")
    return problems


@pytest.mark.parametrize("job", sorted(RUN_ELSEWHERE))
def test_the_jobs_run_elsewhere_are_still_run_there(job):
    test_file, test_name = RUN_ELSEWHERE[job].split("::")
    assert _runs_the_shipped_spec(Path(__file__).parent / test_file, test_name, job) == []


def test_the_elsewhere_check_notices_a_test_that_changes_or_drops_the_spec(tmp_path):
    source = tmp_path / "test_x.py"
    source.write_text(
        'SPEC = str(ROOT / "jobs" / "digits-cnn.yaml")\n'
        "def test_by_the_cli(home):\n    shipyard_json('run', SPEC, timeout=240)\n"
        "def test_by_the_api(home):\n    shipyard.run(ROOT / 'jobs' / 'digits-cnn.yaml')\n"
        "def test_changed(home):\n    cli('run', SPEC, '--set', 'spec.retries=0')\n"
        "def test_changed_by_the_api(home):\n    shipyard.run(SPEC, overrides=['a=1'])\n"
        "def test_other(home):\n    cli('run', OTHER)\n"
        "def test_submitted(home):\n    cli('submit', SPEC)\n"
        "@pytest.mark.skip(reason='later')\n"
        "def test_skipped(home):\n    cli('run', SPEC)\n")
    problems = {name: _runs_the_shipped_spec(source, name, "digits-cnn.yaml")
                for name in ("test_by_the_cli", "test_by_the_api", "test_changed",
                             "test_changed_by_the_api", "test_other", "test_submitted",
                             "test_skipped", "test_renamed")}
    assert problems["test_by_the_cli"] == problems["test_by_the_api"] == []
    assert "changes" in problems["test_changed"][0]
    assert "changes" in problems["test_changed_by_the_api"][0]
    assert "does not run" in problems["test_other"][0]
    assert "does not run" in problems["test_submitted"][0]
    assert "marked" in problems["test_skipped"][0]
    assert "has no test" in problems["test_renamed"][0]
    source.write_text("pytestmark = pytest.mark.skip(reason='later')\n"
                      + source.read_text())
    assert "marked" in _runs_the_shipped_spec(source, "test_by_the_cli", "digits-cnn.yaml")[0]


@pytest.mark.cluster
@pytest.mark.timeout(2 * RUN_TIMEOUT)
# in the order they start (each test waits for its own run), then what has no plan
@pytest.mark.parametrize("name", [*TRIALS, *(n for n in CATALOG
                                            if n not in TRIALS and n not in RUN_ELSEWHERE)])
def test_a_catalog_job_runs_on_a_sample(trials, name):
    assert name in TRIALS, (
        f"jobs/{name} is not tested: give it a Trial in TRIALS (tests/test_catalog.py), "
        "or name the test that runs it as shipped in RUN_ELSEWHERE")
    run = trials.result(name)
    assert run.proc.returncode == 0, run.failure()
    schema = shipyard.result_schema()
    jsonschema.validate(run.result, schema)
    for stage in run.result["stages"].values():
        jsonschema.validate(stage["result"], schema)
    run.trial.check(run)


@pytest.mark.cluster
@pytest.mark.timeout(2 * RUN_TIMEOUT)
def test_the_trial_runs_leave_the_real_outputs_alone(trials):
    """The specs' own output paths stay unwritten: a trial run's outputs go under its
    run directory, except where a python job's parameters say otherwise (README), as
    the data jobs' data/ and basics' out/basics."""
    for name in TRIALS:
        trials.result(name)
    assert sorted(p.name for p in (trials.work / "out").iterdir()) == ["basics"]
    assert sorted(p.name for p in (trials.work / "data").iterdir()) == [
        "customers.parquet", "regions.parquet", "sklearn"]


def test_a_trial_run_of_digits_cnn_says_its_loop_trains_on_all_the_images(tmp_path, caplog):
    """digits-cnn has no torch.data: --sample cannot reach the images its loop loads, and
    the job's log says so rather than leaving a user to think it trained on a share.
    (Its workers here are more than its Ray instance has CPUs, so it stops before
    starting Ray.)"""
    from shipyard.runtime.dask_session import DaskSession
    from shipyard.runtime.ray_session import RaySession
    from shipyard.runtime.context import JobContext
    from shipyard.core.errors import ResourcesError
    from shipyard.spec import load
    from shipyard.train.job import run as run_torch

    spec = load(JOBS / "digits-cnn.yaml", ["spec.sample=0.5", "spec.torch.scaling.workers=3"])
    ctx = JobContext(job_id="digits-cnn-trial", attempt=1, run_dir=tmp_path, spec=spec,
                     dask=DaskSession(spec.spec.resources),
                     ray=RaySession(spec.spec.resources))
    with caplog.at_level("WARNING", logger="shipyard.job"), pytest.raises(ResourcesError):
        run_torch(spec.workload, ctx)
    assert ("a trial run (--sample 0.5) samples torch.data, which this job does not set: "
            "shipyard.train.examples:image_classifier loads its data itself and trains on "
            "all of it") in caplog.text
    assert not ctx.ray.started


def test_a_trial_run_draws_no_figures_unless_the_spec_asks(tmp_path, monkeypatch):
    """A figure never fails its stage, so a trial run, there to catch errors, leaves
    them out; a spec's own report.figures still decides."""
    monkeypatch.delenv("SHIPYARD_REPORT_FIGURES", raising=False)
    doc = load_yaml((JOBS / "quickstart.yaml").read_text())
    quickstart = shipyard.load(doc, base_dir=JOBS)
    trial = {"sample": 0.01, "sample_dir": tmp_path}
    assert quickstart.stage_spec("features").spec.report.figures is True
    assert quickstart.stage_spec("features", **trial).spec.report.figures is False
    doc["spec"]["report"] = {"figures": True}
    asked = shipyard.load(doc, base_dir=JOBS)
    assert asked.stage_spec("features", **trial).spec.report.figures is True
