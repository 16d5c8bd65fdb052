"""Shared fixtures: an isolated SHIPYARD_HOME per test and spec files; every
``result.json`` a test leaves in its SHIPYARD_HOME is checked against the result schema."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import shipyard
from helpers import FIXTURES, job_doc

#: The SHIPYARD_HOME the test session started with (a developer's own, say): its runs are
#: not the tests' to judge.
_OUTER_HOME = os.environ.get("SHIPYARD_HOME")


def result_problems(home: Path) -> list[str]:
    """Every ``runs/*/result.json`` under ``home`` that does not follow
    ``shipyard.result_schema()``: its path and the schema's most relevant complaint."""
    schema = shipyard.result_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = []
    for path in sorted(Path(home).glob("runs/*/result.json")):
        try:
            document = json.loads(path.read_text())
        except ValueError as err:
            problems.append(f"{path}: not JSON: {err}")
            continue
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the top level"
            problems.append(f"{path}: at {where}: {error.message}")
    return problems


@pytest.fixture(autouse=True)
def results_follow_their_schema(monkeypatch):
    """After each test, the results written under the SHIPYARD_HOME it set (the ``home``
    fixture's, or one a test or fixture set itself) must follow the result schema.

    It asks for ``monkeypatch`` so that it ends before the test's environment is undone:
    SHIPYARD_HOME still names the test's home here."""
    yield
    root = os.environ.get("SHIPYARD_HOME")
    if root and root != _OUTER_HOME:
        problems = result_problems(Path(root))
        if problems:
            pytest.fail("result.json that does not follow shipyard.result_schema():\n"
                        + "\n".join(problems), pytrace=False)


#: The modules that take longest (seconds of a whole `make test`, 2 cores, December 2026:
#: sklearn_jobs 376, catalog 288, train_jobs 259, ray_backend 104, pipelines 100, ...),
#: longest first. xdist's workers take whole files in collection order: a long file
#: collected last runs alone at the end while the other worker idles.
LONGEST_FIRST = ["test_sklearn_jobs.py", "test_catalog.py", "test_train_jobs.py",
                 "test_ray_backend.py", "test_pipelines.py", "test_dataframe_faults.py",
                 "test_dataframe_jobs.py", "test_report.py", "test_k8s_backend.py",
                 "test_local_jobs.py", "test_dataframe_equivalence.py"]


def pytest_collection_modifyitems(config, items):
    """Run the longest modules first (unless pytest-randomly shuffles the order)."""
    if config.pluginmanager.has_plugin("randomly"):
        return
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: in-file order kept


@pytest.fixture
def home(tmp_path, monkeypatch, request) -> Path:
    """A fresh SHIPYARD_HOME, and the test job functions importable as `jobfuncs`.

    Jobs draw no figures unless the test is marked ``figures``: a figure that fails
    never fails its job, so only the tests that look at figures learn anything from
    drawing them (the rest spent a fifth of their time on it)."""
    path = tmp_path / "home"
    monkeypatch.setenv("SHIPYARD_HOME", str(path))
    if request.node.get_closest_marker("figures") is None:
        monkeypatch.setenv("SHIPYARD_REPORT_FIGURES", "false")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(FIXTURES), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.chdir(tmp_path)
    return path


@pytest.fixture
def write_spec(tmp_path) -> Callable[..., Path]:
    """Write a python-workload spec file; returns its path."""
    counter = iter(range(10_000))

    def write(entrypoint: str, params: dict | None = None, name: str = "test-job",
              **spec: Any) -> Path:
        path = tmp_path / f"spec-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(job_doc(entrypoint, params, name, **spec)))
        return path

    return write


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API server (moto) on loopback, as s3fs's own tests use."""
    from moto.server import ThreadedMotoServer

    # port 0: the server binds any free one itself (a port picked here first could be
    # taken before it binds, and then start() waits for ever)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
