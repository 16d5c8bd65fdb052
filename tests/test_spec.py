"""Loading specs: defaults, overrides, round trips and the messages for bad ones."""

import pytest
import yaml

import shipyard
from shipyard.core.errors import SpecError, UsageError
from shipyard.spec.overrides import apply_overrides, parse_override
from shipyard.spec import JobSpec, load
from helpers import job_doc


def test_minimal_spec_gets_documented_defaults(home):
    spec = load(job_doc("jobfuncs:echo"))
    assert isinstance(spec, JobSpec) and spec is not None
    assert spec.name == "test-job" and spec.workload_name == "python"
    resources = spec.spec.resources
    assert (resources.workers, resources.threads_per_worker, resources.gpus_per_worker) == (2, 1, 0)
    assert resources.memory_per_worker is None  # auto
    assert spec.spec.retries == 0 and spec.spec.timeout is None and spec.spec.cluster is None


def test_units_are_parsed(home):
    doc = job_doc("jobfuncs:echo", timeout="1h30m",
                  resources={"workers": 3, "memory_per_worker": "4GiB"})
    spec = load(doc)
    assert spec.spec.timeout == 5400
    assert spec.spec.resources.memory_per_worker == 4 * 2**30


def test_spec_is_frozen(home):
    spec = load(job_doc("jobfuncs:echo"))
    with pytest.raises(Exception):
        spec.spec.retries = 3


def test_yaml_round_trip_keeps_units_and_params(home, tmp_path):
    doc = job_doc("jobfuncs:echo", {"value": None}, timeout="30m", retries=2,
                  resources={"memory_per_worker": "512MiB"})
    spec = load(doc)
    path = tmp_path / "again.yaml"
    path.write_text(spec.to_yaml())
    again = load(path)
    assert again.model_dump() == spec.model_dump()
    assert yaml.safe_load(path.read_text())["spec"]["timeout"] == "30m"
    assert again.spec.python.params == {"value": None}


def test_public_api_loads_specs(home, write_spec):
    spec = shipyard.load(write_spec("jobfuncs:echo"))
    assert spec.name == "test-job"
    assert spec.base_dir is not None


@pytest.mark.parametrize("override, path, value", [
    ("spec.resources.workers=4", ["spec", "resources", "workers"], 4),
    ("spec.retries=2", ["spec", "retries"], 2),
    ("spec.python.params.flag=true", ["spec", "python", "params", "flag"], True),
    ("spec.python.params.items=[1, 2]", ["spec", "python", "params", "items"], [1, 2]),
    ("metadata.name=other", ["metadata", "name"], "other"),
    ("spec.python.params.text=a=b", ["spec", "python", "params", "text"], "a=b"),
])
def test_overrides_parse_yaml_values(override, path, value):
    assert parse_override(override) == (path, value)


def test_overrides_apply_to_a_copy_and_create_mappings():
    doc = {"spec": {"python": {"params": {}}}}
    out = apply_overrides(doc, ["spec.resources.workers=3", "spec.python.params.n=5"])
    assert out["spec"]["resources"] == {"workers": 3}
    assert out["spec"]["python"]["params"] == {"n": 5}
    assert doc == {"spec": {"python": {"params": {}}}}


def test_overrides_index_lists():
    doc = {"spec": {"steps": [{"query": "a > 1"}, {"query": "b > 2"}]}}
    assert apply_overrides(doc, ["spec.steps.1.query=c > 3"])["spec"]["steps"][1] == {"query": "c > 3"}
    with pytest.raises(UsageError, match="index below 2"):
        apply_overrides(doc, ["spec.steps.5.query=x"])


@pytest.mark.parametrize("bad", ["noequals", "=4", "spec..workers=4"])
def test_malformed_overrides_are_usage_errors(bad):
    with pytest.raises(UsageError, match="path=value"):
        parse_override(bad)


def test_override_through_a_scalar_is_explained():
    with pytest.raises(UsageError, match="spec.retries is int 0, not a mapping"):
        apply_overrides({"spec": {"retries": 0}}, ["spec.retries.x=1"])


def test_overrides_are_validated_like_the_file(home):
    with pytest.raises(SpecError) as err:
        load(job_doc("jobfuncs:echo"), ["spec.resources.workers=0", "spec.resorces.x=1"])
    assert err.value.problems == [
        "spec.resources.workers: must be >= 1, got 0",
        "spec.resorces: unknown field; did you mean 'resources'?",
    ]


def test_every_problem_is_reported_with_its_path(home):
    doc = job_doc("jobfuncs:echo", name="Bad_Name", retries="two", timeout="soon")
    doc["spec"]["resources"] = {"workers": True, "threads_per_worker": 0, "gpu": 1}
    doc["extra"] = 1
    with pytest.raises(SpecError) as err:
        load(doc)
    problems = "\n".join(err.value.problems)
    assert "metadata.name: must be a DNS-1123 label" in problems and "try 'bad-name'" in problems
    assert "spec.retries: must be an integer, got 'two'" in problems
    assert "spec.timeout: must be a duration" in problems
    assert "spec.resources.workers: must be an integer, got true" in problems
    assert "spec.resources.threads_per_worker: must be >= 1, got 0" in problems
    assert "spec.resources.gpu: unknown field; did you mean 'gpus_per_worker'?" in problems
    assert "extra: unknown field" in problems


def test_entrypoint_problems_name_the_field(home):
    with pytest.raises(SpecError, match=r"spec.python.entrypoint: cannot import module 'nosuchmodule'"):
        load(job_doc("nosuchmodule:main"))
    with pytest.raises(SpecError, match=r"has no attribute 'ecko'.*did you mean 'echo'"):
        load(job_doc("jobfuncs:ecko"))
    with pytest.raises(SpecError, match=r"spec.python.params: does not fit flaky\(ctx, counter"):
        load(job_doc("jobfuncs:flaky", {"failures": 1}))


def test_imports_can_be_skipped_for_specs_checked_elsewhere(home):
    spec = load(job_doc("nosuchmodule:main"), check_references=False)
    assert spec.spec.python.entrypoint == "nosuchmodule:main"


@pytest.mark.parametrize("env, written, figures", [
    (None, None, True), ("false", None, False), ("0", None, False), ("true", None, True),
    ("false", True, True), (None, False, False)])
def test_report_figures_default_comes_from_the_environment(home, monkeypatch, env, written,
                                                           figures):
    if env is None:
        monkeypatch.delenv("SHIPYARD_REPORT_FIGURES", raising=False)
    else:
        monkeypatch.setenv("SHIPYARD_REPORT_FIGURES", env)
    doc = job_doc("jobfuncs:echo", **({} if written is None else {"report": {"figures": written}}))
    spec = load(doc)
    assert spec.spec.report.figures is figures
    # a default stays out of the written spec, so it is read again where the job runs
    assert ("figures" in spec.to_dict()["spec"].get("report", {})) is (written is not None)


def test_aliases_are_counted_as_the_values_they_expand_to():
    """Anchors and merge keys work as YAML says; the limit is on the values a document
    holds once its aliases are expanded (tests/specs/invalid/ holds the alias bomb)."""
    from shipyard.spec.yamlio import MAX_VALUES, load_yaml

    merged = load_yaml("base: &base {workers: 2, threads_per_worker: 1}\n"
                       "resources: {<<: *base, workers: 4}\n")
    assert merged["resources"] == {"workers": 4, "threads_per_worker": 1}

    block = "[" + ", ".join(["0"] * 999) + "]"  # a sequence of 999 values: 1,000 values
    # the mapping, then each of its entries (a key and the block): 1 + 1,001 per entry
    entries = (MAX_VALUES - 1) // 1001
    text = f"a: &a {block}\n" + "".join(f"k{i}: *a\n" for i in range(entries - 1))
    assert len(load_yaml(text)) == entries
    with pytest.raises(yaml.YAMLError, match="expand to more than"):
        load_yaml(text + "one_more: *a\n")
