"""Reports and observability: result.json against its schema, the HTML report of each
kind of job (its content, and that it renders in headless Chromium), progress in
``status --json`` (phase, Dask tasks, ETA, dashboards), the failed job's page, and
``shipyard report``.

Jobs run for real through the CLI, on one Dask cluster shared by the module
(``--cluster tcp://...``: the dask backend), so no job pays for a cluster start.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

import shipyard
from browser import load_page
from datagen import customers, regions
from helpers import ROOT, job_doc, shipyard_json, wait_until
from helpers import shipyard as cli
from shipyard.ml.datasets import write_datasets
from shipyard.spec.yamlio import load_yaml

pytestmark = pytest.mark.figures  # these tests look at the jobs' figures

#: Screenshots of each kind of report land here when set (to look at them).
SCREENSHOTS = os.environ.get("SHIPYARD_SCREENSHOTS")


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def workdir(home, tmp_path):
    """Catalog data at test sizes: the churn tables and the sklearn datasets."""
    data = tmp_path / "data"
    data.mkdir()
    customers(4000).to_parquet(data / "customers.parquet")
    regions().to_parquet(data / "regions.parquet")
    write_datasets(directory=str(data / "sklearn"))
    return tmp_path


def _write(tmp_path: Path, doc: dict, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _catalog(name: str, **changes) -> dict:
    doc = load_yaml((ROOT / "jobs" / f"{name}.yaml").read_text())  # `on:` stays a key
    doc["spec"].update(changes)
    return doc


def _run(spec: str, scheduler: str) -> dict:
    status = shipyard_json("run", spec, "--cluster", scheduler, timeout=300)
    assert status["state"] == "SUCCEEDED", status
    return status


def _check_report(status: dict, kind: str, figures: set[str]) -> tuple[Path, str]:
    """The run's result.json validates, lists ``figures`` (files that exist) and its
    report; the page holds the tables and every figure; returns (page, its text)."""
    result = status["result"]
    jsonschema.validate(result, shipyard.result_schema())
    assert result["workload"] == kind
    run_dir = shipyard.Job(status["id"]).run_dir
    names = {f["name"] for f in result["figures"]}
    assert figures <= names, names
    for entry in result["figures"]:
        png = (run_dir / entry["path"]).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000, entry
    assert [p["phase"] for p in result["phases"]][0] == "start"
    page = run_dir / result["report"]
    text = page.read_text()
    assert html.escape(status["name"]) in text and "SUCCEEDED" in text
    assert text.count('<img alt=') == len(result["figures"])
    assert "Timings per phase" in text and "apiVersion: shipyard/v1" in text
    return page, text


def _renders(page: Path, kind: str, images: int) -> None:
    shot = Path(SCREENSHOTS) / f"report-{kind}.png" if SCREENSHOTS else None
    if shot is not None:
        shot.parent.mkdir(parents=True, exist_ok=True)
    check = load_page(page, screenshot=shot)
    assert len(check.images) == images and not check.broken_images, check.images
    assert all(image["width"] >= 300 for image in check.images), check.images
    assert not check.console_errors and not check.page_errors, (check.console_errors,
                                                                 check.page_errors)
    assert not check.failed_requests, check.failed_requests


@pytest.mark.browser
@pytest.mark.cluster
def test_a_dataframe_jobs_report(workdir, scheduler):
    status = _run(_write(workdir, _catalog("churn-prep"), "prep"), scheduler)
    page, text = _check_report(status, "dataframe",
                               {"histograms", "missing_values", "correlation", "rows_per_step"})
    result = status["result"]
    # the rows table shows the result's numbers, every step named
    assert f">{result['rows']['output']}<" in text
    for step in result["steps"]:
        assert f"<td>{step['step']}</td>" in text
    _renders(page, "dataframe", len(result["figures"]))


@pytest.mark.browser
@pytest.mark.cluster
def test_an_sklearn_jobs_report(workdir, scheduler):
    doc = _catalog("breast-cancer-grid")
    status = _run(_write(workdir, doc, "grid"), scheduler)
    page, text = _check_report(status, "sklearn", {
        "model_comparison", "confusion_matrix", "roc_curve", "precision_recall",
        "learning_curve", "feature_importance", "search_results", "class_separation"})
    result = status["result"]
    for pair in result["comparisons"]:
        assert html.escape(pair["verdict"]) in text
    best = result["models"][result["best_model"]]
    assert f"{best['cv_mean']:.4g}" in text
    assert "Classification report" in text
    _renders(page, "sklearn", len(result["figures"]))


@pytest.mark.browser
def test_a_torch_report_page_renders(tmp_path):
    """The torch page from a real torch figure set on a recorded history (the digits
    job itself runs in test_train_jobs.py, which checks its report)."""
    from shipyard.runtime.reporting import write_job_report
    from shipyard.report.figures import FigureSet
    from shipyard.report.torch_figures import draw_torch_figures

    history = [{"epoch": e, "train_loss": 2.0 / (e + 1), "val_loss": 2.2 / (e + 1),
                "train_accuracy": 1 - 0.5 / (e + 1), "val_accuracy": 1 - 0.6 / (e + 1),
                "lr": 0.005 * 0.9 ** e, "samples_per_s": 15000.0 + e} for e in range(8)]
    result = {"job_id": "digits-1", "attempt": 1, "workload": "torch", "outputs": [],
              "metrics": history, "test_metrics": {"accuracy": 0.97, "loss": 0.1},
              "artifacts": {"model_state_dict": "/x/model.pt"}, "worker_failures": 0,
              "scaling": {"workers": 2, "use_gpu": False}, "timing": {"fit_s": 12.0},
              "phases": [{"phase": "start", "seconds": 1.0}, {"phase": "train", "seconds": 9.0}],
              "report": "report/index.html"}
    figures = FigureSet(tmp_path)
    draw_torch_figures(figures, history)
    result["figures"] = figures.entries
    jsonschema.validate(result, shipyard.result_schema())
    (tmp_path / "result.json").write_text(json.dumps(result))
    (tmp_path / "spec.yaml").write_text((ROOT / "jobs" / "digits-cnn.yaml").read_text())
    page = write_job_report(tmp_path, job_id="digits-1", state="SUCCEEDED", attempt=1)
    text = page.read_text()
    assert {"loss", "accuracy", "learning_rate", "throughput"} <= {f["name"] for f in
                                                                   result["figures"]}
    assert "Epochs" in text and "Test metrics" in text
    _renders(page, "torch", len(result["figures"]))


@pytest.mark.cluster
def test_progress_reaches_status_json(home, write_spec, scheduler):
    """While a phase runs Dask tasks, status --json shows the phase, its tasks done of
    total, an ETA and the dashboard; the result then lists the phases with their times."""
    spec = write_spec("jobfuncs:slow_tasks", {"tasks": 80, "seconds": 0.1, "hold": 0.0})
    job_id = cli("submit", str(spec), "--cluster", scheduler, check=True).stdout.strip()
    job = shipyard.Job(job_id)

    def tasks_moving():
        progress = job.status().progress or {}
        tasks = progress.get("tasks") or {}
        return progress if progress.get("phase") == "square" and tasks.get("done") else None

    wait_until(tasks_moving, timeout=60, what="task progress")
    status = shipyard_json("status", job_id)
    progress = status["progress"]
    assert status["state"] == "RUNNING" and progress["attempt"] == 1
    if progress["phase"] == "square":  # the JSON may have been read just after the phase
        assert progress["tasks"]["total"] >= 80
        assert 0 <= progress["tasks"]["done"] <= progress["tasks"]["total"]
        assert progress["unit"] == "graphs" and progress["total"] == 1
        assert progress.get("eta_seconds") is None or progress["eta_seconds"] >= 0
    assert progress["dashboard"].startswith("http://")
    assert status["started_at"] and status["created_at"]

    record = job.wait(timeout=120)
    assert record.state == "SUCCEEDED"
    final = job.status().progress
    assert final["tasks"]["done"] == final["tasks"]["total"] or final["phase"] != "square"
    result = job.result()
    jsonschema.validate(result, shipyard.result_schema())
    phases = {p["phase"]: p["seconds"] for p in result["phases"]}
    assert set(phases) == {"start", "square", "draw"}
    assert phases["square"] >= 80 * 0.1 / 2 * 0.8  # 80 tasks of 0.1 s on 2 workers
    assert [f["name"] for f in result["figures"]] == ["squares"]


def test_eta_is_estimated_from_the_phases_rate(tmp_path):
    from shipyard.runtime.context import JobContext
    from shipyard.spec import load

    spec = load(job_doc("jobfuncs:echo"), check_references=False)
    ctx = JobContext(job_id="j", attempt=1, run_dir=tmp_path, spec=spec, dask=None)
    ctx.progress("train", done=0, total=10, unit="epochs")
    assert "eta_seconds" not in ctx._progress  # nothing moved yet
    ctx._progress["phase_started_at"] -= 4.0     # 4 s into the phase...
    ctx.progress(done=2)                          # ...2 of 10 epochs done: 16 s to go
    assert ctx._progress["eta_seconds"] == pytest.approx(16.0, abs=0.5)
    ctx.task_counts(30, 100)                      # tasks, when the phase runs any, win
    assert ctx._progress["tasks"] == {"done": 30, "total": 100}
    assert ctx._progress["eta_seconds"] == pytest.approx(4.0 * 70 / 30, abs=0.5)
    ctx.progress("save")                          # a new phase: its own tasks and clock
    assert "tasks" not in ctx._progress and "eta_seconds" not in ctx._progress
    ctx.task_counts(120, 130)                     # 70 left over from train, +30 new
    assert ctx._progress["tasks"] == {"done": 90, "total": 100}
    assert [p["phase"] for p in ctx.phase_timings()] == ["start", "train", "save"]


@pytest.mark.browser
@pytest.mark.cluster
def test_a_failed_jobs_report_shows_the_reason_and_the_log_tail(home, write_spec):
    spec = write_spec("jobfuncs:boom", {"message": "kaputt"})
    status = shipyard_json("run", str(spec))
    assert status["state"] == "FAILED"
    proc = cli("report", status["id"], check=True)
    page = Path(proc.stdout.strip())
    assert page == shipyard.Job(status["id"]).run_dir / "report" / "index.html"
    text = page.read_text()
    assert "FAILED" in text and "ValueError: kaputt" in text
    assert "about to fail" in text  # the log's tail: the job's own line before it failed
    assert "Traceback (most recent call last)" in text
    _renders(page, "failed", 0)

    # a runner killed before it wrote the page: `shipyard report` writes it from the files
    shutil.rmtree(page.parent)
    assert Path(cli("report", status["id"], check=True).stdout.strip()) == page
    assert "ValueError: kaputt" in page.read_text()


def test_the_schema_can_fail():
    schema = shipyard.result_schema()
    good = {"job_id": "j", "attempt": 1, "workload": "python", "outputs": [], "value": 3,
            "artifacts": {}, "figures": [{"name": "a", "title": "A",
                                          "path": "report/figures/a.png"}],
            "phases": [{"phase": "start", "seconds": 0.5}], "report": "report/index.html"}
    jsonschema.validate(good, schema)
    for broken in ({**good, "figures": [{"name": "a", "title": "A", "path": "/abs/a.png"}]},
                   # only a pipeline's figures are in other run directories (its stages')
                   {**good, "figures": [{"name": "a", "title": "A",
                                         "path": "../j2/report/figures/a.png"}]},
                   {k: v for k, v in good.items() if k != "phases"},
                   {k: v for k, v in good.items() if k != "artifacts"},
                   {k: v for k, v in good.items() if k != "value"},
                   {**good, "workload": "sklearn"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


@pytest.mark.cluster
def test_logs_follow_prints_progress_lines_when_not_a_terminal(home, write_spec):
    spec = write_spec("jobfuncs:progress_steps", {"steps": 3, "pause": 0.5})
    job_id = cli("submit", str(spec), check=True).stdout.strip()
    proc = cli("logs", job_id, "--follow", check=True)
    assert "step 3" in proc.stdout
    assert "[shipyard]" not in proc.stdout  # state lines go to stderr
    assert f"{job_id} SUCCEEDED" in proc.stderr


@pytest.mark.cluster
@pytest.mark.parametrize("name", ["churn-prep"])
def test_figures_off_leaves_a_page_without_figures(workdir, scheduler, name):
    doc = _catalog(name, report={"figures": False})
    status = _run(_write(workdir, doc, "nofig"), scheduler)
    result = status["result"]
    assert result["figures"] == []
    run_dir = shipyard.Job(status["id"]).run_dir
    assert not (run_dir / "report" / "figures").exists()
    assert "<img" not in (run_dir / "report" / "index.html").read_text()
    pd.read_parquet(workdir / "out" / "churn_features.parquet")  # the job itself ran
