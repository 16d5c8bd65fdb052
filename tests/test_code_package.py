"""The code package a job ships to clusters that share no disk with the submitter
(shipyard.core.code_package): what goes in, its digest, and what is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from shipyard.core import code_package
from shipyard.core.code_package import build_code_package, code_digest
from shipyard.core.errors import SpecError


@pytest.fixture
def project(tmp_path):
    """A spec's folder as users have them: code, a spec, data, caches, an environment."""
    root = tmp_path / "project"
    (root / "helpers").mkdir(parents=True)
    (root / "steps.py").write_text("from helpers.text import shout\n\ndef run(x):\n"
                                   "    return shout(x)\n")
    (root / "helpers" / "__init__.py").write_text("")
    (root / "helpers" / "text.py").write_text("def shout(x):\n    return x.upper()\n")
    (root / "job.yaml").write_text("apiVersion: shipyard/v1\n")
    (root / "data").mkdir()
    (root / "data" / "train.parquet").write_bytes(b"PAR1" * 100)
    (root / "data" / "raw.csv").write_text("a\n1\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "steps.cpython-311.pyc").write_bytes(b"\0")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "big.py").write_text("x = 1\n")
    return root


def test_the_spec_folder_goes_in_without_data_caches_or_environments(project, tmp_path):
    package = build_code_package(project, cache_dir=tmp_path / "cache")
    assert package.names == ("helpers/__init__.py", "helpers/text.py", "job.yaml", "steps.py")
    with zipfile.ZipFile(package.path) as archive:
        assert sorted(archive.namelist()) == list(package.names)
    # importable as the runner and Dask's workers import it: the zip on sys.path
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import steps; "
            "print(steps.run('ok'))")
    out = subprocess.run([sys.executable, "-c", code, str(package.path)], cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "OK"


def test_the_digest_is_the_content_only(project, tmp_path):
    first = build_code_package(project, cache_dir=tmp_path / "cache")
    zip_bytes = first.path.read_bytes()
    os.utime(project / "steps.py", (0, 0))  # touched, not changed
    first.path.unlink()
    again = build_code_package(project, cache_dir=tmp_path / "cache")
    assert again.digest == first.digest == code_digest(project)
    assert again.path.read_bytes() == zip_bytes  # byte for byte: Ray names it by its hash
    (project / "steps.py").write_text("def run(x):\n    return x\n")
    assert code_digest(project) != first.digest


def test_extra_paths_keep_their_names_and_excludes_apply(project, tmp_path):
    shared = tmp_path / "shared_lib"
    shared.mkdir()
    (shared / "features.py").write_text("N = 3\n")
    (shared / "notes.md").write_text("# notes\n")
    package = build_code_package(project, ["../shared_lib", "helpers"],
                                 ["*.md", "helpers/text.py"], cache_dir=tmp_path / "cache")
    assert package.names == ("helpers/__init__.py", "job.yaml", "shared_lib/features.py",
                             "steps.py")


def test_a_spec_without_a_folder_ships_only_its_paths(project, tmp_path, monkeypatch):
    monkeypatch.chdir(project)
    package = build_code_package(None, ["helpers"], cache_dir=tmp_path / "cache")
    assert package.names == ("helpers/__init__.py", "helpers/text.py")


def test_skipped_folders_stay_out(project, tmp_path):
    home = project / "home"
    (home / "runs").mkdir(parents=True)
    (home / "runs" / "spec.yaml").write_text("{}\n")
    package = build_code_package(project, cache_dir=tmp_path / "cache", skip=[home])
    assert not any(name.startswith("home/") for name in package.names)


def test_what_cannot_be_packaged_is_refused_naming_it(project, tmp_path, monkeypatch):
    with pytest.raises(SpecError, match=r"spec.code.paths: 'nowhere' does not exist"):
        build_code_package(project, ["nowhere"], cache_dir=tmp_path / "cache")
    other = tmp_path / "other" / "helpers"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("# another\n")
    with pytest.raises(SpecError, match="would both be 'helpers/__init__.py'"):
        build_code_package(project, [str(other)], cache_dir=tmp_path / "cache")
    (project / "weights.bin").write_bytes(b"\0" * 4096)
    monkeypatch.setattr(code_package, "MAX_BYTES", 1024)
    with pytest.raises(SpecError) as refused:
        build_code_package(project, cache_dir=tmp_path / "cache")
    assert "over the 0 MiB limit" in str(refused.value)
    assert str(refused.value).index("weights.bin") < str(refused.value).index("steps.py")
    assert not list((tmp_path / "cache").glob("*.zip"))  # nothing half-written
