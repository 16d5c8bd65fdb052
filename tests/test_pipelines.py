"""Pipelines end to end on the local backend: real drivers, stage jobs and runners.

The stages are python workloads (tests/fixtures/pipeline_steps.py) so that each test
shows one behaviour in seconds: validation, concurrency, caching, failure and resume,
``--from``, cancelling, trial runs. The quickstart pipeline runs in test_demo_job.py.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml

import shipyard
from shipyard.core.errors import SpecError, UsageError
from shipyard.jobs.api import get_job, resume
from shipyard.core.procs import is_alive
from shipyard.core.states import JobState
from shipyard.spec.pipeline import load_pipeline
from helpers import (job_doc, pipeline_doc as pipeline, python_stage, shipyard as cli,
                     wait_until)


def stage(name: str, entrypoint: str, needs=(), declared: str | None = None, **params):
    """A stage running one of tests/fixtures/pipeline_steps.py's functions."""
    return python_stage(name, f"pipeline_steps:{entrypoint}", needs, declared, **params)


def write(tmp_path: Path, document: dict, name: str = "pipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def diamond(tmp_path: Path, sleep: float = 0.0, fail_if: str | None = None,
            meet: str | None = None) -> dict:
    """a and b (independent) -> c (needs both) -> d; with ``meet`` (a folder), a and b
    each wait there for the other (they can only finish if they run at the same time)."""
    together = {"meet": meet} if meet else {}
    return pipeline(
        stage("a", "write", declared="out/a.txt", text="A", sleep=sleep, output="${output}",
              **together),
        stage("b", "write", declared="out/b.txt", text="B", sleep=sleep, output="${output}",
              **together),
        stage("c", "concat", needs=["a", "b"], declared="out/c.txt",
              inputs=["${stages.a.output}", "${stages.b.output}"], fail_if=fail_if,
              output="${output}"),
        stage("d", "concat", needs=["c"], declared="out/d.txt",
              inputs=["${stages.c.output}"], output="${output}"),
    )


def states(job) -> dict[str, tuple[str, bool]]:
    return {name: (s["state"], s["cached"]) for name, s in job.status_document()["stages"].items()}


# -- validation ---------------------------------------------------------------------------

INVALID = {
    "cycle": (lambda: pipeline(stage("a", "write", needs=["c"], declared="x", output="x"),
                               stage("b", "write", needs=["a"]), stage("c", "write", needs=["b"])),
              "stage 'a': its needs form a cycle (a needs c needs b needs a)"),
    "unknown need": (lambda: pipeline(stage("a", "write"), stage("b", "write", needs=["aa"])),
                     "stage 'b': needs 'aa', which is not a stage"),
    "needs itself": (lambda: pipeline(stage("a", "write", needs=["a"])),
                     "stage 'a': needs itself"),
    "unknown reference": (lambda: pipeline(stage("a", "write", declared="o"),
                                           stage("b", "write", needs=["a"],
                                                 path="${stages.aa.output}")),
                          "stage 'b': ${stages.aa.output} names no stage; did you mean 'a'?"),
    "missing needs": (lambda: pipeline(stage("a", "write", declared="o"),
                                       stage("b", "write", path="${stages.a.output}")),
                      "stage 'b': refers to ${stages.a.output} but does not need 'a'; "
                      "add needs: [a]"),
    "no output": (lambda: pipeline(stage("a", "write"),
                                   stage("b", "write", needs=["a"], path="${stages.a.output}")),
                  "stage 'b': ${stages.a.output}: stage 'a' declares no output"),
    "own output undeclared": (lambda: pipeline(stage("a", "write", path="${output}")),
                              "stage 'a': ${output} needs output: PATH on the stage"),
    "unknown reference form": (lambda: pipeline(stage("a", "write", declared="o"),
                                                stage("b", "write", needs=["a"],
                                                      path="${stages.a.path}")),
                               "stage 'b': ${stages.a.path} is not a reference shipyard knows"),
    "duplicate name": (lambda: pipeline(stage("a", "write"), stage("a", "write")),
                       "spec.stages[1].name: 'a' is the name of spec.stages[0] too"),
    "bad stage name": (lambda: pipeline(stage("Prep_1", "write")),
                       "spec.stages[0].name: must be a DNS-1123 label"),
    "two workloads": (lambda: pipeline({"name": "a", "python": {"entrypoint": "x:y"},
                                        "torch": {"train_loop": "x:y"}}),
                      "a stage has exactly one workload block"),
    "bad block": (lambda: pipeline({"name": "prep", "dataframe": {"inputs": {}}}),
                  "stage 'prep': spec.dataframe.inputs"),
    "bad entrypoint": (lambda: pipeline(stage("a", "no_such_function")),
                       "stage 'a': spec.python.entrypoint"),
    "no stages": (lambda: pipeline(), "spec.stages"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_pipelines_name_the_stage(case, home):
    build, expected = INVALID[case]
    document = build()
    with pytest.raises(SpecError) as info:
        load_pipeline(document)
    assert expected in str(info.value), str(info.value)


def test_invalid_pipeline_on_the_cli_exits_2_and_submits_nothing(tmp_path, home):
    path = write(tmp_path, INVALID["missing needs"][0]())
    for command in (["validate", str(path)], ["run", str(path)]):
        proc = cli(*command)
        assert proc.returncode == 2, proc.stderr
        assert "stage 'b'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_references_resolve_and_a_trial_run_moves_outputs(tmp_path, home):
    document = pipeline(
        stage("a", "write", declared="out/a.txt", output="${output}"),
        {"name": "prep", "needs": ["a"], "dataframe": {
            "inputs": {"main": {"path": "data/raw.csv"},
                       "ref": {"path": "${stages.a.output}", "format": "csv"}},
            "main": "main", "output": {"path": "out/prep.parquet"}}},
        {"name": "fit", "needs": ["prep"], "torch": {
            "train_loop": "shipyard.train.examples:tabular_mlp",
            "data": {"path": "${stages.prep.output}"}}})
    spec = load_pipeline(document, check_references=False)
    assert spec.order == ["a", "prep", "fit"]
    assert spec.stage_document("fit")["spec"]["torch"]["data"]["path"] == "out/prep.parquet"
    assert spec.stage_document("a")["spec"]["python"]["params"]["output"] == "out/a.txt"
    trial = spec.stage_document("prep", sample=0.1, sample_dir="/runs/x/sample")
    inputs = trial["spec"]["dataframe"]["inputs"]
    assert inputs["main"]["sample"] == 0.1            # read from outside: sampled
    assert "sample" not in inputs["ref"]               # an earlier stage's output already is
    assert inputs["ref"]["path"] == "/runs/x/sample/a/a.txt"
    assert trial["spec"]["dataframe"]["output"] == {"path": "/runs/x/sample/prep/prep.parquet",
                                                    "overwrite": True}
    assert trial["spec"]["sample"] == 0.1 and "cluster" not in trial["spec"]
    fit = spec.stage_document("fit", sample=0.1, sample_dir="/runs/x/sample")
    assert fit["spec"]["torch"]["data"]["path"] == "/runs/x/sample/prep/prep.parquet"
    assert fit["metadata"]["labels"] == {"shipyard.io/pipeline": "pipe",
                                         "shipyard.io/stage": "fit"}


def test_a_python_stages_key_ignores_what_it_writes_into_its_own_output(tmp_path, home):
    from shipyard.pipelines.cache import stage_key

    (tmp_path / "in.txt").write_text("read")
    spec = load_pipeline(pipeline(stage("a", "write", declared="out/a", text="A",
                                        output="${output}/a.txt", source="in.txt")),
                         check_references=False)
    key = stage_key(spec.stage_spec("a"), "out/a")
    (tmp_path / "out" / "a").mkdir(parents=True)
    (tmp_path / "out" / "a" / "a.txt").write_text("A")  # what the stage writes
    assert stage_key(spec.stage_spec("a"), "out/a") == key
    (tmp_path / "in.txt").write_text("read again")  # what it reads
    assert stage_key(spec.stage_spec("a"), "out/a") != key


# -- running --------------------------------------------------------------------------------


@pytest.mark.cluster
def test_independent_stages_run_concurrently_and_the_result_lists_every_stage(tmp_path, home):
    # a and b share no dependency: each waits for the other to start, so the pipeline
    # only succeeds if they run at the same time
    path = write(tmp_path, diamond(tmp_path, meet=str(tmp_path / "met")))
    proc = cli("run", str(path), "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    stages = status["result"]["stages"]
    assert list(stages) == ["a", "b", "c", "d"]
    assert sorted(p.name for p in (tmp_path / "met").iterdir()) == ["A", "B"]
    c = stages["c"]
    assert c["state"] == "SUCCEEDED" and c["cached"] is False and c["needs"] == ["a", "b"]
    assert c["result"]["value"] == {"text": "A+B"}
    assert Path("out/d.txt").read_text() == "A+B"
    assert stages["d"]["result"]["job_id"] == stages["d"]["job_id"]
    assert status["stages"]["d"]["state"] == "SUCCEEDED"
    report = Path(status["result"]["report"])
    page = (home / "runs" / status["id"] / report).read_text()
    assert "Stages" in page and "A+B" in page


@pytest.mark.cluster
def test_a_second_run_takes_every_stage_from_the_cache_until_an_input_changes(tmp_path, home):
    path = write(tmp_path, diamond(tmp_path))
    first = shipyard.run(path)
    assert first.status().state is JobState.SUCCEEDED
    second = shipyard.run(path)
    assert second.status().state is JobState.SUCCEEDED
    assert states(second) == {n: ("SUCCEEDED", True) for n in "abcd"}
    result = second.result()
    assert result["stages"]["c"]["job_id"] == first.result()["stages"]["c"]["job_id"]
    assert result["stages"]["c"]["result"]["value"] == {"text": "A+B"}
    assert get_job(second.id).status().finished_at - second.status().started_at < 5

    # an output changed behind the cache's back: the stage that wrote it runs again; it
    # writes the same bytes, and small inputs count by content, so c and d stay cached
    Path("out/b.txt").write_text("changed")
    third = shipyard.run(path)
    assert states(third) == {"a": ("SUCCEEDED", True), "b": ("SUCCEEDED", False),
                             "c": ("SUCCEEDED", True), "d": ("SUCCEEDED", True)}
    assert Path("out/b.txt").read_text() == "B"
    # a change to the stage's spec block is a new key too
    changed = diamond(tmp_path)
    changed["spec"]["stages"][0]["python"]["params"]["text"] = "A2"
    fourth = shipyard.run(write(tmp_path, changed, "changed.yaml"))
    assert fourth.result()["stages"]["d"]["result"]["value"] == {"text": "A2+B"}
    assert states(fourth)["b"] == ("SUCCEEDED", True)

    forced = shipyard.run(path, no_cache=True)
    assert states(forced) == {n: ("SUCCEEDED", False) for n in "abcd"}


@pytest.mark.cluster
def test_a_failed_stage_skips_what_follows_and_resume_reruns_only_from_it(tmp_path, home):
    flag = tmp_path / "broken"
    flag.write_text("")
    # the stages' module lies beside the spec, not on the path: the resumed run finds it
    # there too (it is read from the spec's own directory, not from the run's copy's)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "steps_beside.py").write_text("from pipeline_steps import concat, write\n")
    path = specs / "pipe.yaml"
    path.write_text(yaml.safe_dump(diamond(tmp_path, fail_if=str(flag)))
                    .replace("pipeline_steps:", "steps_beside:"))
    proc = cli("run", str(path), timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "stage 'c' failed: RuntimeError: asked to fail" in proc.stderr
    failed_id = next(r.id for r in reversed(shipyard.list_jobs()) if r.kind == "pipeline")
    job = get_job(failed_id)
    assert states(job) == {"a": ("SUCCEEDED", False), "b": ("SUCCEEDED", False),
                           "c": ("FAILED", False), "d": ("SKIPPED", False)}
    assert job.status_document()["stages"]["d"]["reason"] == "not run: stage 'c' failed"
    first_a = job.status_document()["stages"]["a"]["job_id"]

    flag.unlink()  # fixed
    resumed = resume(failed_id)
    record = resumed.wait(timeout=120)
    assert record.state is JobState.SUCCEEDED, record.reason
    stages = resumed.status_document()["stages"]
    assert stages["a"]["job_id"] == first_a and stages["a"]["reused_from"] == failed_id
    assert stages["a"]["cached"] and stages["b"]["cached"]
    assert not stages["c"]["cached"] and not stages["d"]["cached"]
    assert Path("out/d.txt").read_text() == "A+B"
    assert any(e.message == f"resumes {failed_id}" for e in resumed.events())

    with pytest.raises(UsageError, match="only a FAILED or CANCELLED pipeline"):
        resume(resumed.id)


@pytest.mark.cluster
def test_from_a_stage_reruns_it_and_what_follows_and_reuses_the_rest(tmp_path, home):
    flag = tmp_path / "broken"
    path = write(tmp_path, diamond(tmp_path, fail_if=str(flag)))
    first = shipyard.run(path)
    again = shipyard.run(path, from_stage="c")
    assert states(again) == {"a": ("SUCCEEDED", True), "b": ("SUCCEEDED", True),
                             "c": ("SUCCEEDED", False), "d": ("SUCCEEDED", False)}
    assert again.status_document()["stages"]["a"]["reused_from"] == first.id
    with pytest.raises(UsageError, match="--from e: the pipeline has no such stage"):
        shipyard.submit(path, from_stage="e")

    # resumed, a --from run keeps its options: c runs again, not from the cache
    flag.write_text("")
    failed = shipyard.run(path, from_stage="c")
    assert states(failed)["c"] == ("FAILED", False)
    flag.unlink()
    resumed = resume(failed.id)
    assert resumed.wait(timeout=120).state is JobState.SUCCEEDED
    assert states(resumed) == {"a": ("SUCCEEDED", True), "b": ("SUCCEEDED", True),
                               "c": ("SUCCEEDED", False), "d": ("SUCCEEDED", False)}


@pytest.mark.cluster
def test_bad_input_in_a_stage_fails_the_pipeline_with_exit_2(tmp_path, home):
    path = write(tmp_path, pipeline(stage("a", "write", declared="out/a.txt", output="${output}"),
                                    stage("b", "refuse", needs=["a"], path="${stages.a.output}")))
    proc = cli("run", str(path), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "stage 'b' failed" in proc.stderr and "column 'price' does not exist" in proc.stderr


@pytest.mark.cluster
def test_cancelling_a_pipeline_cancels_its_running_stage(tmp_path, home):
    path = write(tmp_path, pipeline(stage("slow", "sleep", seconds=120),
                                    stage("after", "sleep", needs=["slow"], seconds=1)))
    job = shipyard.submit(path)
    running = wait_until(lambda: job.status_document()["stages"]["slow"]["job_id"]
                         if job.status_document()["stages"]["slow"]["state"] == "RUNNING" else None,
                         timeout=120, what="the slow stage to start")
    wait_until(lambda: get_job(running).status().state is JobState.RUNNING, timeout=120)
    record = job.cancel()
    assert record.state is JobState.CANCELLED
    assert get_job(running).status().state is JobState.CANCELLED
    assert states(job) == {"slow": ("CANCELLED", False), "after": ("SKIPPED", False)}


@pytest.mark.cluster
def test_a_killed_driver_is_started_again_and_the_pipeline_finishes(tmp_path, home):
    path = write(tmp_path, diamond(tmp_path, sleep=1.5))
    job = shipyard.submit(path)
    wait_until(lambda: job.status_document()["stages"]["a"]["state"] == "RUNNING", timeout=120)
    os.kill(job._store.get(job.id).supervisor_pid, signal.SIGKILL)
    record = job.wait(timeout=120)  # reading the status notices and restarts it
    assert record.state is JobState.SUCCEEDED, record.reason
    assert any("pipeline driver lost; starting it again" in (e.message or "")
               for e in job.events())
    assert Path("out/d.txt").read_text() == "A+B"


@pytest.mark.cluster
def test_reading_the_list_restarts_a_lost_driver_even_after_a_lost_job(tmp_path, home):
    # a job and a pipeline on the same cluster, each of whose process was killed: the
    # list reconciles each with its own kind's backend
    job = shipyard.submit(job_doc("pipeline_steps:sleep", {"seconds": 60}))
    wait_until(lambda: job.status().state is JobState.RUNNING, timeout=120)
    pipe = shipyard.submit(write(tmp_path, pipeline(stage("slow", "sleep", seconds=60))))
    wait_until(lambda: pipe.status_document()["stages"]["slow"]["state"] == "RUNNING",
               timeout=120)
    for lost in (job, pipe):
        record = lost._store.get(lost.id)
        os.kill(record.supervisor_pid, signal.SIGKILL)
        wait_until(lambda: not is_alive(record.supervisor_pid, record.supervisor_started),
                   timeout=120, what="the process to be gone")
    try:
        records = {r.id: r for r in shipyard.list_jobs()}
        assert records[job.id].state is JobState.FAILED
        assert records[pipe.id].state is JobState.RUNNING, records[pipe.id].reason
        assert any("pipeline driver lost; starting it again" in (e.message or "")
                   for e in pipe.events())
    finally:
        pipe.cancel()


@pytest.mark.cluster
def test_stages_computing_on_a_lost_drivers_cluster_run_again(tmp_path, home):
    # the driver's Dask cluster (its scheduler lives in the driver) goes with it
    (tmp_path / "raw.csv").write_text("x\n1\n2\n")
    document = pipeline(
        python_stage("slow", "jobfuncs:slow_tasks", tasks=30, seconds=0.2),
        {"name": "prep", "needs": ["slow"], "resources": {"workers": 1},
         "dataframe": {"inputs": {"main": {"path": "raw.csv"}},
                       "steps": [{"assign": {"y": "x * 2"}}],
                       "output": {"path": "out/prep.parquet"}}})
    job = shipyard.submit(write(tmp_path, document))

    def computing():
        stage = job.status_document()["stages"]["slow"]
        if stage["state"] != "RUNNING":
            return None
        progress = get_job(stage["job_id"]).status().progress or {}
        return stage["job_id"] if progress.get("phase") == "square" else None

    first = wait_until(computing, timeout=60, what="the slow stage computing")
    os.kill(job._store.get(job.id).supervisor_pid, signal.SIGKILL)
    record = job.wait(timeout=180)
    assert record.state is JobState.SUCCEEDED, record.reason
    slow = job.result()["stages"]["slow"]
    assert slow["job_id"] != first and slow["result"]["value"]["total"] == sum(
        i * i for i in range(30))
    assert get_job(first).status().state in (JobState.CANCELLED, JobState.FAILED)
    assert any("its Dask cluster was lost with the pipeline driver" in (e.message or "")
               for e in job.events())


@pytest.mark.cluster
def test_a_failed_trial_run_resumes_on_its_sample(tmp_path, home):
    flag = tmp_path / "broken"
    flag.write_text("")
    path = write(tmp_path, diamond(tmp_path, fail_if=str(flag)))
    with pytest.raises(UsageError, match="do not go together"):
        shipyard.submit(path, sample=0.5, from_stage="c")
    single = job_doc("pipeline_steps:write", {"output": "out/x.txt"})
    with pytest.raises(UsageError, match="--no-cache is for pipelines"):
        shipyard.submit(single, sample=0.5, no_cache=True)
    trial = shipyard.run(path, sample=0.5)
    assert states(trial)["c"] == ("FAILED", False)
    flag.unlink()
    resumed = resume(trial.id)
    assert resumed.wait(timeout=120).state is JobState.SUCCEEDED
    # c read what the first run's a and b wrote, where that run wrote it
    d = Path(resumed.result()["stages"]["d"]["output"])
    assert d.is_relative_to(home / "runs" / trial.id / "sample") and d.read_text() == "A+B"
    assert not Path("out").exists()


@pytest.mark.cluster
def test_a_trial_run_samples_inputs_and_leaves_real_outputs_alone(tmp_path, home):
    rows = 2000
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.csv").write_text(
        "id,x\n" + "".join(f"{i},{i * 0.5}\n" for i in range(rows)))
    document = pipeline(
        stage("marker", "write", declared="out/marker.txt", text="real", output="${output}"),
        {"name": "prep", "needs": ["marker"], "resources": {"workers": 1},
         "dataframe": {"inputs": {"main": {"path": "data/raw.csv"}},
                       "steps": [{"assign": {"y": "x * 2"}}],
                       "output": {"path": "out/prep.parquet"}}})
    path = write(tmp_path, document)
    proc = cli("validate", str(path), "--sample", "0.1", timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "valid pipeline 'pipe': marker (python), prep (dataframe)" in proc.stdout
    assert not Path("out").exists()  # the real outputs were never written
    job = next(get_job(r.id) for r in shipyard.list_jobs() if r.kind == "pipeline")
    result = job.result()
    assert result["stages"]["marker"]["result"]["value"]["sample"] == 0.1
    prep = result["stages"]["prep"]
    written = Path(prep["output"])
    assert written.is_relative_to(home / "runs" / job.id / "sample")
    import pandas as pd

    frame = pd.read_parquet(written)
    assert 0.05 * rows < len(frame) < 0.15 * rows
    assert (frame["y"] == frame["x"] * 2).all() and frame["id"].is_unique
    # nothing of a trial run is reused, from the cache or by --from: every stage runs
    real = shipyard.run(path, from_stage="prep")
    assert states(real) == {"marker": ("SUCCEEDED", False), "prep": ("SUCCEEDED", False)}
    assert len(pd.read_parquet("out/prep.parquet")) == rows

