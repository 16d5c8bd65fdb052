"""The shipped artefacts as shipped: the cluster profiles in cluster/, and every spec and
`shipyard` command README.md (and k8s/README.md) shows.

The rest of the suite writes its own specs and profiles; these tests read the files a
user reads, through the code a user's command goes through, so a documented path that
fails is caught here rather than by the user (issue 16).

README specs are loaded as if saved in jobs/ (so `basics:main` and `churn_data:main`
import as they do for the catalog's specs), from a folder holding small copies of the
data the catalog's jobs write (data/customers.parquet, data/sklearn/*.parquet, made by
the same functions), so their inputs are read and checked too.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import psutil
import pytest
from click.testing import CliRunner

import shipyard
from shipyard.cli import cli as shipyard_cli
from shipyard.backends.kubernetes.settings import kubernetes_settings
from shipyard.backends.local_settings import local_settings
from shipyard.backends.profiles import resolve_cluster
from shipyard.spec.pipeline import PipelineSpec
from shipyard.spec import WORKLOADS, JobSpec, load
from shipyard.spec.yamlio import load_yaml
from helpers import ROOT, job_doc, pipeline_doc, python_stage, shipyard as run_cli, wait_until

DOCS = [ROOT / "README.md", ROOT / "k8s" / "README.md"]
PROFILES = sorted((ROOT / "cluster").glob("*.yaml"))
JOBS_DIR = ROOT / "jobs"

#: README blocks that are not checked, each with its reason (match: the block's first
#: line). Keep this tiny: fix README instead where the example can be made real.
EXEMPT_BLOCKS: dict[str, str] = {}


# -- reading the docs ----------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced code block of a doc."""

    doc: str
    line: int  # of its first content line
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


@dataclass(frozen=True)
class Command:
    """A `shipyard ...` command line shown in a doc."""

    doc: str
    line: int
    words: tuple[str, ...]  # after "shipyard"
    concrete: bool          # a line to copy and run (`$ shipyard ...`), not a synopsis
    output: tuple[str, ...] = ()  # the lines a console block shows after it

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}: shipyard {' '.join(self.words)}"


def _doc_name(path: Path) -> str:
    return str(path.relative_to(ROOT))


_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\s*$")


def read_blocks(path: Path) -> list[Block]:
    blocks, lines = [], path.read_text().splitlines()
    start = lang = indent = None
    for number, line in enumerate(lines, 1):
        fence = _FENCE.match(line)
        if fence and start is None:
            start, lang, indent = number, fence["lang"], len(fence["indent"])
        elif fence and start is not None:
            body = [text[indent:] for text in lines[start:number - 1]]
            blocks.append(Block(_doc_name(path), start + 1, lang, "\n".join(body)))
            start = None
    return blocks


def prose(path: Path) -> str:
    """The doc without its fenced blocks (line count kept, for line numbers)."""
    out, inside = [], False
    for line in path.read_text().splitlines():
        if _FENCE.match(line):
            inside = not inside
            out.append("")
        else:
            out.append("" if inside else line)
    return "\n".join(out)


def _split(text: str) -> list[str]:
    return shlex.split(text, comments=True)


#: A synopsis line of a text block: `shipyard run SPEC [--json]    what it does`.
_SYNOPSIS = re.compile(r"^shipyard ([a-z][\w|-]*(?: \S+)*)(?:\s{3,}.*)?$")
#: Its continuation: an indented line of more `[--option VALUE]`s.
_CONTINUED = re.compile(r"^\s+(\[.*?\])(?:\s{3,}.*)?$")


def read_commands(path: Path) -> list[Command]:
    """Every `shipyard` command the doc shows: `$ shipyard ...` lines of console and
    text blocks (with the output shown under them), the synopsis lines of text blocks,
    `(shipyard ...)` hints in shown output, and inline code spans."""
    doc, commands = _doc_name(path), []
    for block in read_blocks(path):
        if block.lang not in ("console", "text", "bash", "shell", "sh"):
            continue
        lines = block.text.splitlines()
        synopsis: tuple[int, list[str]] | None = None
        for offset, line in enumerate(lines):
            number = block.line + offset
            continued = _CONTINUED.match(line)
            if synopsis and continued:
                synopsis[1].extend(continued[1].split())
                continue
            if synopsis:
                commands.append(Command(doc, synopsis[0], tuple(synopsis[1]), False))
                synopsis = None
            prompt = re.match(r"^\$ (?:\.venv/bin/)?shipyard (.*)$", line)
            if prompt:
                output = []
                for later in lines[offset + 1:]:
                    if later.startswith("$ "):
                        break
                    output.append(later)
                commands.append(Command(doc, number, tuple(_split(prompt[1])), True,
                                        tuple(output)))
            elif _SYNOPSIS.match(line):
                synopsis = (number, _SYNOPSIS.match(line)[1].split())
            for hint in re.finditer(r"\(shipyard ([^)]*)\)", line):
                commands.append(Command(doc, number, tuple(hint[1].split()), False))
        if synopsis:
            commands.append(Command(doc, synopsis[0], tuple(synopsis[1]), False))
    text = prose(path)
    names = set(shipyard_cli.commands)
    for span in re.finditer(r"`([^`]+)`", text):
        words = span[1].split()
        line = text.count("\n", 0, span.start()) + 1
        if words and re.fullmatch(r"(\.venv/bin/)?shipyard", words[0]) and len(words) > 1:
            commands.append(Command(doc, line, tuple(words[1:]), False))
        elif len(words) > 1 and words[0] in names and words[1].lstrip("[").startswith("-"):
            commands.append(Command(doc, line, tuple(words), False))  # `status --json`
    return commands


def read_set_paths(path: Path) -> list[tuple[str, int, str]]:
    """Every `path=value` override the doc shows (`--set ...`, `overrides=[...]`, or a
    bare `spec.x.y=...` in a sentence): (doc, line, dotted path)."""
    found = []
    text = path.read_text()
    for match in re.finditer(r"(?<![\w.])((?:spec|metadata)(?:\.[\w-]+)+)=", text):
        found.append((_doc_name(path), text.count("\n", 0, match.start()) + 1, match[1]))
    return found


ALL_COMMANDS = [c for doc in DOCS for c in read_commands(doc)]
ALL_BLOCKS = [b for doc in DOCS for b in read_blocks(doc)]
YAML_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "yaml"]
SET_PATHS = [p for doc in DOCS for p in read_set_paths(doc)]


# -- the click command tree ------------------------------------------------------------


def find_command(words: tuple[str, ...], root: click.Group = shipyard_cli
                 ) -> list[tuple[click.Command, list[str], str]]:
    """The commands ``words`` name, and the words left for each: ``cluster up|down``
    and ``submit/status`` name several."""
    group: click.Command = root
    path: list[str] = []
    rest = list(words)
    while isinstance(group, click.Group) and rest and not rest[0].startswith("-"):
        names = re.split(r"[|/]", rest[0])
        if len(names) > 1:
            return [found for name in names
                    for found in find_command((*path, name, *rest[1:]), root)]
        command = group.commands.get(names[0])
        if command is None:
            known = ", ".join(sorted(group.commands))
            raise AssertionError(f"no command `{' '.join([*path, names[0]])}` "
                                 f"(the commands there: {known})")
        group, path, rest = command, [*path, names[0]], rest[1:]
    return [(group, rest, " ".join(path))]


def option_names(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts, param.secondary_opts)
    return names


def check_command(command: Command, root: click.Group = shipyard_cli) -> list[str]:
    """What is wrong with a command line README shows, as messages (none: fine)."""
    problems = []
    try:
        found = find_command(command.words, root)
    except AssertionError as err:
        return [f"{command.where}: {err}"]
    for target, rest, name in found:
        for flag in (w.strip("[]").split("=", 1)[0] for w in rest if "--" in w):
            if flag.startswith("--") and flag not in option_names(target):
                problems.append(f"{command.where}: `shipyard {name}` has no option {flag} "
                                f"(its options: {', '.join(sorted(option_names(target)))})")
        if command.concrete and not problems:
            try:  # the whole line, as click will parse it when the user runs it
                target.make_context(name, list(rest))
            except click.ClickException as err:
                problems.append(f"{command.where}: {err.format_message()}")
    return problems


# -- data the README specs read ---------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_data(tmp_path_factory) -> Path:
    """A folder with small copies of what the catalog's data jobs write: churn-data's
    data/customers.parquet and data/regions.parquet, sklearn-datasets' data/sklearn/."""
    root = tmp_path_factory.mktemp("catalog")
    (root / "data").mkdir()
    module_spec = importlib.util.spec_from_file_location("churn_data_for_readme",
                                                         JOBS_DIR / "churn_data.py")
    churn_data = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(churn_data)
    churn_data.make_customers(2000, seed=1).to_parquet(root / "data" / "customers.parquet")
    churn_data.make_regions().to_parquet(root / "data" / "regions.parquet")
    from shipyard.ml.datasets import write_datasets

    write_datasets(None, directory=str(root / "data" / "sklearn"))
    return root


@pytest.fixture
def in_catalog(home, catalog_data, monkeypatch) -> Path:
    monkeypatch.chdir(catalog_data)
    return catalog_data


# -- the cluster profiles in cluster/ ------------------------------------------------------


def test_the_shipped_profiles_are_the_expected_ones():
    # the parametrized test below must not pass by finding nothing
    assert {p.stem for p in PROFILES} >= {"local", "kubernetes"}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_shipped_profile_loads_and_validates(home, monkeypatch, path):
    """Resolved by name from the repository root, as `--cluster NAME` does there, and its
    settings validated as its backend validates them when a job is submitted."""
    monkeypatch.chdir(ROOT)
    profile = resolve_cluster(path.stem, home / "clusters")
    assert profile.source == str(path)
    assert profile.name == load_yaml(path.read_text()).get("name", path.stem)
    if profile.backend == "local":
        local_settings(profile.source, profile.settings)
    elif profile.backend == "kubernetes":
        kubernetes_settings(profile.name, profile.settings)
    else:
        pytest.fail(f"{path}: no check for backend {profile.backend!r} here yet")


def test_the_shipped_local_profile_lets_dask_decide_the_memory(home, monkeypatch):
    monkeypatch.chdir(ROOT)
    profile = resolve_cluster("local", home / "clusters")
    assert profile.settings["resources"]["memory_per_worker"] == "auto"
    resources = local_settings(profile.source, profile.settings).resources
    assert resources.memory_per_worker is None and resources.dask_memory_limit == "auto"


def test_a_local_profile_with_bad_resources_is_refused_before_anything_starts(home):
    (home / "clusters").mkdir(parents=True)
    bad = home / "clusters" / "small.yaml"
    bad.write_text("backend: local\nresources: {workers: 0, memory_per_worker: lots}\n")
    proc = run_cli("cluster", "up", "small", "--json")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    message = proc.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert str(bad) in message
    assert "resources.workers: must be >= 1, got 0" in message
    assert "resources.memory_per_worker: must be a memory size" in message
    assert "auto" in message  # says what else is allowed
    assert not (home / "clusters" / "small.log").exists()  # no cluster process was started


# -- memory_per_worker: auto ---------------------------------------------------------------


@pytest.mark.parametrize("written", ["auto", "AUTO", None])
def test_auto_memory_in_a_job_spec_means_dask_decides(home, written):
    spec = load(job_doc("jobfuncs:echo", resources={"memory_per_worker": written}))
    assert spec.spec.resources.memory_per_worker is None
    assert spec.spec.resources.dask_memory_limit == "auto"
    assert spec.spec.resources == load(job_doc("jobfuncs:echo")).spec.resources


def test_auto_memory_is_written_back_as_auto_and_loads_again(home, tmp_path):
    spec = load(job_doc("jobfuncs:echo", resources={"memory_per_worker": "auto"}))
    assert spec.to_dict()["spec"]["resources"] == {"memory_per_worker": "auto"}
    path = tmp_path / "again.yaml"
    path.write_text(spec.to_yaml())
    assert load(path).spec.resources == spec.spec.resources


def test_auto_memory_can_be_set_from_the_command_line(home, write_spec):
    path = write_spec("jobfuncs:echo", resources={"memory_per_worker": "4GiB"})
    spec = load(path, ["spec.resources.memory_per_worker=auto"])
    assert spec.spec.resources.memory_per_worker is None
    proc = run_cli("validate", str(path), "--set", "spec.resources.memory_per_worker=auto")
    assert proc.returncode == 0, proc.stderr


def test_auto_memory_in_a_pipeline_spec(home):
    stage = python_stage("a", "jobfuncs:echo")
    pipeline = load(pipeline_doc({**stage, "resources": {"memory_per_worker": "auto"}},
                                 resources={"workers": 2, "memory_per_worker": "auto"}))
    assert pipeline.resources().memory_per_worker is None
    assert pipeline.stage_spec("a").spec.resources.memory_per_worker is None
    # a stage that says auto leaves the pipeline's cluster to the stage that names a size
    sized = load(pipeline_doc({**stage, "resources": {"memory_per_worker": "auto"}},
                              {**python_stage("b", "jobfuncs:echo"),
                               "resources": {"memory_per_worker": "1GiB"}}))
    assert sized.resources().memory_per_worker == 2**30


def test_a_bad_memory_size_says_auto_is_allowed(home):
    with pytest.raises(shipyard.SpecError) as err:
        load(job_doc("jobfuncs:echo", resources={"memory_per_worker": "lots"}))
    assert "spec.resources.memory_per_worker: must be a memory size such as 512MiB" in str(err.value)
    assert "auto" in str(err.value)


# -- README: commands ------------------------------------------------------------------


def test_the_docs_show_commands_and_specs():
    # the parametrized tests below must not pass by finding nothing
    assert len(ALL_COMMANDS) > 30 and len(YAML_BLOCKS) > 5 and len(SET_PATHS) > 3
    assert any(c.concrete for c in ALL_COMMANDS)


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: c.where)
def test_every_documented_command_exists_with_its_options(command):
    assert not check_command(command), "\n".join(check_command(command))


@pytest.mark.parametrize("command", [c for c in ALL_COMMANDS if c.concrete
                                     and any(w.startswith("jobs/") for w in c.words)],
                         ids=lambda c: c.where)
def test_every_documented_command_on_a_catalog_spec_works_on_it(home, in_catalog, monkeypatch,
                                                                  command):
    """`shipyard run jobs/X.yaml --set ... --cluster ...`: the spec exists and loads with
    those overrides, and the cluster resolves from the repository root."""
    (target, rest, name), = find_command(command.words)
    ctx = target.make_context(name, list(rest))
    spec_path = ROOT / ctx.params["spec"]
    assert spec_path.is_file(), f"{command.where}: {ctx.params['spec']} does not exist"
    load(spec_path, ctx.params.get("overrides", ()))  # inputs read from the catalog's data
    monkeypatch.chdir(ROOT)  # where README's commands run: ./cluster/ holds the profiles
    if ctx.params.get("cluster"):
        resolve_cluster(ctx.params["cluster"], home / "clusters")
    if name == "render":  # needs no cluster: run it, with the shipped profile
        result = CliRunner().invoke(shipyard_cli, list(command.words))
        assert result.exit_code == 0, f"{command.where}: {result.output}"
        assert "kind: ConfigMap" in result.output


def test_a_documented_validate_prints_what_the_docs_show(home, monkeypatch):
    shown = [c for c in ALL_COMMANDS if c.concrete and c.words[:1] == ("validate",)
             and c.words[1].startswith("jobs/") and c.output]
    assert shown, "README shows `shipyard validate jobs/...` with its output"
    monkeypatch.chdir(ROOT)
    for command in shown:
        result = CliRunner().invoke(shipyard_cli, list(command.words))
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "\n".join(command.output).strip(), command.where


@pytest.mark.parametrize("doc,line,path", SET_PATHS, ids=lambda v: str(v))
def test_every_documented_set_path_is_a_spec_field(doc, line, path):
    schemas = [JobSpec.model_json_schema(), PipelineSpec.model_json_schema()]
    assert any(_resolves(schema, schema, path.split(".")) for schema in schemas), (
        f"{doc}:{line}: --set {path}=... names no field of a job or pipeline spec")


def _resolves(root: dict, node: dict, parts: list[str]) -> bool:
    """Whether the dotted ``parts`` lead to a field in the JSON schema ``node``."""
    if "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    if not parts:
        return True
    branches = node.get("anyOf", []) + node.get("oneOf", []) + node.get("allOf", [])
    if any(_resolves(root, branch, parts) for branch in branches):
        return True
    head, rest = parts[0], parts[1:]
    if head in node.get("properties", {}):
        return _resolves(root, node["properties"][head], rest)
    if head.isdigit() and "items" in node:
        return _resolves(root, node["items"], rest)
    extra = node.get("additionalProperties")
    if node.get("type") == "object" and "properties" not in node and extra is not False:
        return _resolves(root, extra if isinstance(extra, dict) else {}, rest)  # any key
    return node == {}  # Any: whatever lies below


# -- README: specs ---------------------------------------------------------------------


def _documented(block: Block) -> Any:
    if block.text.splitlines()[0] in EXEMPT_BLOCKS:
        pytest.skip(EXEMPT_BLOCKS[block.text.splitlines()[0]])
    return load_yaml(block.text)  # as shipyard reads a spec file (`on:` is a key, not true)


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: b.where)
def test_every_documented_yaml_block_is_valid(in_catalog, block):
    """Whole specs load as they are; a workload block (`sklearn:`, `torch:`, ...) loads
    as the one block of a minimal job; a cluster profile (`# cluster/NAME.yaml`) loads
    as a profile of that name and agrees with the shipped file of that name."""
    document = _documented(block)
    assert isinstance(document, dict), f"{block.where}: not a YAML mapping"
    if "apiVersion" in document:
        load(document, check_references=True, check_inputs=True, base_dir=str(JOBS_DIR))
    elif len(document) == 1 and next(iter(document)) in WORKLOADS:
        load(job_doc("jobfuncs:echo") | {"spec": document}, base_dir=str(JOBS_DIR))
    elif "backend" in document:
        named = re.match(r"#\s*cluster/([\w-]+)\.yaml", block.text)
        assert named, f"{block.where}: a profile block starts with `# cluster/NAME.yaml`"
        clusters = in_catalog / "profiles"
        clusters.mkdir(exist_ok=True)
        (clusters / f"{named[1]}.yaml").write_text(block.text)
        profile = resolve_cluster(named[1], clusters)
        assert profile.backend == document["backend"]
        shipped = ROOT / "cluster" / f"{named[1]}.yaml"
        if shipped.is_file():  # what README shows is what ships
            ships = load_yaml(shipped.read_text())
            assert {k: ships.get(k) for k in document} == document, block.where
    else:
        pytest.fail(f"{block.where}: a YAML block that is neither a spec, a workload block "
                    "nor a cluster profile; check it here or exempt it with a reason")


# -- `cluster up` when its process dies (the shipped profile's run: test_clusters.py) -------


@pytest.mark.cluster
def test_cluster_up_says_at_once_why_the_cluster_process_died(home):
    """The cluster process dies while `cluster up` waits (here: its state file cannot
    be written, a folder stands in the way): exit 3, one readable paragraph."""
    (home / "clusters" / "local.state.json").mkdir(parents=True)
    proc = run_cli("cluster", "up", "--json", timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    message = proc.stderr.strip()
    assert message.startswith("error: the local cluster 'local' could not start: ")
    assert "\n" not in message and "Traceback" not in message and 'File "' not in message
    assert "IsADirectoryError" in message and "local.state.json" in message
    assert "did not start within" not in message  # it did not wait for the time-out
    assert str(home / "clusters" / "local.log") in message
    assert not _daemons(home)


@pytest.mark.cluster
def test_cluster_up_says_when_the_cluster_process_was_killed(home):
    """Killed before it could say anything (SIGKILL, the OOM killer): exit 3, and what
    it had started is ended too."""
    proc = subprocess.Popen([sys.executable, "-m", "shipyard", "cluster", "up"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    daemon = wait_until(lambda: _daemons(home), timeout=60, what="the cluster process")[0]
    assert not (home / "clusters" / "local.state.json").exists()  # not up yet
    daemon.kill()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert f"its process (pid {daemon.pid}) was killed by signal 9" in err
    assert "Traceback" not in err
    assert not _in_session(daemon.pid)  # nor the Dask workers it may have started


def _daemons(home: Path) -> list[psutil.Process]:
    """The `cluster up` processes (python -m shipyard.backends.local_daemon) of this home."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if "shipyard.backends.local_daemon" in cmdline and str(home) in cmdline:
            found.append(process)
    return found


def _in_session(leader: int) -> list[psutil.Process]:
    """What still runs in the session a (dead) daemon led: the Dask workers it started."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == leader and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (OSError, psutil.NoSuchProcess):
            continue
    return found
