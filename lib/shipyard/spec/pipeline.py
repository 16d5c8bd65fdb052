"""The pipeline spec (``kind: Pipeline``): named stages that pass data along.

Each stage carries one workload block, as a job does, plus ``needs`` (the stages that
must finish first) and optionally its own ``resources``, ``retries`` and ``timeout``.
A stage refers to an earlier stage's output as ``${stages.NAME.output}`` and to its own
as ``${output}``::

    apiVersion: shipyard/v1
    kind: Pipeline
    metadata: {name: churn}
    spec:
      stages:
        - name: data
          output: data/churn                  # what ${stages.data.output} means
          python: {entrypoint: churn_data:main, params: {output_dir: "${output}"}}
        - name: prep
          needs: [data]
          dataframe:
            inputs: {main: {path: "${stages.data.output}/customers.parquet"}}
            output: {path: out/features.parquet, overwrite: true}
        - name: models
          needs: [prep]
          sklearn: {input: {path: "${stages.prep.output}"}, target: will_churn, ...}

A stage's output is its ``output:``, else a dataframe stage's ``output.path``, else an
sklearn stage's ``batch_predict.output.path``. References resolve when the spec is
loaded, so every stage is an ordinary job spec (:meth:`PipelineSpec.stage_spec`), run
by the same runner on every backend.

Examples
--------
>>> spec = load_pipeline({
...     "apiVersion": "shipyard/v1", "kind": "Pipeline", "metadata": {"name": "p"},
...     "spec": {"stages": [
...         {"name": "a", "output": "out/a.txt",
...          "python": {"entrypoint": "os.path:join", "params": {"a": "${output}"}}},
...         {"name": "b", "needs": ["a"],
...          "python": {"entrypoint": "os.path:join", "params": {"a": "${stages.a.output}"}}},
...     ]}}, check_references=False)
>>> spec.order, spec.stage_document("b")["spec"]["python"]["params"]
(['a', 'b'], {'a': 'out/a.txt'})
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from shipyard.core.errors import SpecError
from shipyard.core.model import StrictModel
from shipyard.core.workloads import data_fields
from shipyard.spec.job import (CodeSettings, Count, DnsLabel, Duration, ReportSettings,
                               Resources, SpecDocument, load_job, the_workload)
from shipyard.spec.errors import describe_errors

__all__ = ["PipelineSpec", "Stage", "load_pipeline", "stage_job_name"]

#: ``${...}`` in a string value; what is inside decides whether it is shipyard's.
_REFERENCE = re.compile(r"\$\{\s*([^}]*?)\s*\}")
_STAGE_OUTPUT = re.compile(r"^stages\.([^.\s]+)\.output$")



class Stage(StrictModel):
    """One entry of ``spec.stages``: a name, what it needs, and one workload block (kept
    as written here; it is validated as a job spec of its own)."""

    name: DnsLabel
    needs: list[str] = Field(default_factory=list)
    output: str | None = None
    resources: Resources | None = None
    retries: Count = Field(0, ge=0)
    timeout: Duration | None = None
    dataframe: dict[str, Any] | None = None
    sklearn: dict[str, Any] | None = None
    torch: dict[str, Any] | None = None
    python: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _exactly_one_workload(self) -> Stage:
        the_workload(self, "a stage has exactly one workload block")
        return self

    @property
    def workload_name(self) -> str:
        return the_workload(self)

    @property
    def block(self) -> dict[str, Any]:
        return getattr(self, self.workload_name)

    def declared_output(self) -> str | None:
        """What ``${stages.NAME.output}`` means, as written (references unresolved)."""
        if self.output is not None:
            return self.output
        outputs = [f for f in data_fields(self.workload_name, self.block) if f.output]
        return outputs[0].path if outputs else None


class PipelineBody(StrictModel):
    """``spec`` of a pipeline: where it runs, and its stages."""

    cluster: str | None = None
    #: the shared Dask cluster of a local run (default: the largest the stages ask for)
    resources: Resources | None = None
    timeout: Duration | None = None
    report: ReportSettings = Field(default_factory=ReportSettings)
    #: the code package every stage ships (see :class:`~shipyard.spec.job.CodeSettings`)
    code: CodeSettings = Field(default_factory=CodeSettings)
    stages: list[Stage] = Field(min_length=1)


class PipelineSpec(SpecDocument):
    """A whole pipeline spec. Build one with :func:`load_pipeline` (or
    :func:`shipyard.spec.load`), which checks the stage graph and every stage."""

    kind: Literal["Pipeline"]
    spec: PipelineBody

    @property
    def workload_name(self) -> str:
        """``pipeline`` (a job spec names its workload here)."""
        return "pipeline"

    @property
    def stages(self) -> dict[str, Stage]:
        return {stage.name: stage for stage in self.spec.stages}

    @property
    def order(self) -> list[str]:
        """The stage names, each after every stage it needs (declaration order otherwise)."""
        done: list[str] = []
        left = list(self.spec.stages)
        while left:
            ready = next(s for s in left if all(n in done for n in s.needs))
            done.append(ready.name)
            left.remove(ready)
        return done

    def upstream(self, name: str) -> set[str]:
        """Every stage ``name`` needs, directly or through others."""
        stages, seen, todo = self.stages, set(), list(self.stages[name].needs)
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(stages[current].needs)
        return seen

    def downstream(self, name: str) -> set[str]:
        """Every stage that needs ``name``, directly or through others."""
        return {other for other in self.stages if name in self.upstream(other)}

    def resources(self) -> Resources:
        """``spec.resources``, else the largest of the stages' in each field."""
        if self.spec.resources is not None:
            return self.spec.resources
        each = [s.resources or Resources() for s in self.spec.stages]
        memory = [r.memory_per_worker for r in each if r.memory_per_worker is not None]
        return Resources(workers=max(r.workers for r in each),
                         threads_per_worker=max(r.threads_per_worker for r in each),
                         memory_per_worker=max(memory) if memory else None,
                         gpus_per_worker=max(r.gpus_per_worker for r in each))

    def outputs(self, sample_dir: str | Path | None = None) -> dict[str, str | None]:
        """Each stage's output with references resolved (under ``sample_dir`` in a trial run)."""
        resolved: dict[str, str | None] = {}
        for name in self.order:
            raw = self.stages[name].declared_output()
            value = None if raw is None else _substitute(raw, resolved, None)
            if value is not None and sample_dir is not None:
                value = _trial_path(sample_dir, name, value)
            resolved[name] = value
        return resolved

    def stage_document(self, name: str, *, sample: float | None = None,
                       sample_dir: str | Path | None = None,
                       outputs: dict[str, str | None] | None = None) -> dict[str, Any]:
        """Stage ``name`` as a ``kind: Job`` document, its references resolved.

        With ``sample``, the trial-run version: every input not written by an earlier
        stage keeps that share of its rows, outputs go under ``sample_dir/<stage>/``,
        and the job runs on the local cluster, drawing no figures unless the spec sets
        ``report.figures``. ``outputs`` says where each stage's output is, where that is
        not where it was declared (a cluster keeps local outputs in its object store).
        """
        stage = self.stages[name]
        if outputs is None:
            outputs = self.outputs(sample_dir if sample is not None else None)
        block = _plain(stage.block)
        if sample is not None:
            block = _trial_block(stage.workload_name, block, sample, sample_dir, name)
        block = _substitute(block, outputs, outputs[name])
        report = self.spec.report.model_dump(mode="json")
        if sample is not None and "figures" not in self.spec.report.model_fields_set:
            # a figure never fails its stage, so a trial run, there to catch errors, has
            # no use for them (nor for the passes over the data behind them)
            report["figures"] = False
        body: dict[str, Any] = {
            "resources": (stage.resources or self.resources()).model_dump(mode="json"),
            "retries": stage.retries,
            "report": report,
            stage.workload_name: block,
        }
        if self.spec.code.model_fields_set:
            body["code"] = self.spec.code.model_dump(mode="json")
        if stage.timeout is not None:
            body["timeout"] = stage.timeout
        if self.spec.cluster is not None and sample is None:
            body["cluster"] = self.spec.cluster
        if sample is not None:
            body["sample"] = sample
        labels = {**self.metadata.labels, "shipyard.io/pipeline": self.name,
                  "shipyard.io/stage": name}
        return {"apiVersion": "shipyard/v1", "kind": "Job",
                "metadata": {"name": stage_job_name(self.name, name), "labels": labels},
                "spec": body}

    def stage_spec(self, name: str, *, sample: float | None = None,
                   sample_dir: str | Path | None = None, check_references: bool = False,
                   outputs: dict[str, str | None] | None = None):
        """Stage ``name`` as a loaded :class:`~shipyard.spec.JobSpec` (see
        :meth:`stage_document`); the runner checks its references when it runs."""
        spec = load_job(self.stage_document(name, sample=sample, sample_dir=sample_dir,
                                            outputs=outputs),
                        check_references=check_references, base_dir=self.base_dir)
        spec._source = f"{self.source} (stage {name})"
        spec._base_dir = self.base_dir
        return spec

    def references(self, name: str) -> set[str]:
        """The stages whose output stage ``name`` refers to."""
        stage = self.stages[name]
        return {ref for text in strings([stage.block, stage.output])
                for ref in _stage_refs(text)}



def stage_job_name(pipeline: str, stage: str) -> str:
    """The job name of a stage: ``<pipeline>-<stage>``, the pipeline's part shortened to
    keep a DNS label.

    Examples
    --------
    >>> stage_job_name("churn", "prep")
    'churn-prep'
    """
    room = 63 - len(stage) - 1
    return f"{pipeline[:room].rstrip('-')}-{stage}" if room > 0 else stage


# -- references ---------------------------------------------------------------------


def strings(value: Any):
    """Every string in a YAML-ish structure, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


def _stage_refs(text: str) -> list[str]:
    return [m.group(1) for ref in _REFERENCE.finditer(text)
            if (m := _STAGE_OUTPUT.match(ref.group(1)))]


def _substitute(value: Any, outputs: dict[str, str | None], own: str | None) -> Any:
    """``value`` with ``${stages.X.output}`` and ``${output}`` replaced (checked before)."""
    if isinstance(value, str):
        def replace(match: re.Match) -> str:
            inner = match.group(1)
            stage = _STAGE_OUTPUT.match(inner)
            if stage and outputs.get(stage.group(1)) is not None:
                return outputs[stage.group(1)]
            if inner == "output" and own is not None:
                return own
            return match.group(0)
        return _REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {key: _substitute(item, outputs, own) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, outputs, own) for item in value]
    return value


def _plain(value: Any) -> Any:
    """A deep copy of a YAML-ish structure."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# -- trial runs (--sample) -------------------------------------------------------------


def _trial_path(sample_dir: str | Path, stage: str, path: str) -> str:
    return str(Path(sample_dir) / stage / PurePosixPath(path.rstrip("/")).name)


def _trial_block(workload: str, block: dict[str, Any], fraction: float,
                 sample_dir: str | Path | None, stage: str) -> dict[str, Any]:
    """The stage's block for a trial run: its own inputs sampled, its outputs moved."""
    if sample_dir is None:
        raise ValueError("a trial run needs a directory for its outputs")
    for found in data_fields(workload, block):
        spec = found.holder
        if spec is None:
            continue  # a saved model: read as it is
        if not found.output and not _stage_refs(found.path):
            # an earlier stage's output is a sample already
            spec["sample"] = fraction * float(spec.get("sample") or 1.0)
        if found.output:
            if "${output}" not in found.path:
                spec["path"] = _trial_path(sample_dir, stage, _substitute(found.path, {}, None))
            spec["overwrite"] = True
    return block


# -- loading -----------------------------------------------------------------------------


def _near(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (stages: {', '.join(names)})"


def _graph_problems(spec: PipelineSpec) -> list[str]:
    """Duplicate names, unknown or missing needs, cycles, references that cannot hold."""
    problems: list[str] = []
    names = [s.name for s in spec.spec.stages]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append(f"spec.stages[{index}].name: {name!r} is the name of "
                            f"spec.stages[{names.index(name)}] too; stage names are unique")
    if problems:
        return problems
    for stage in spec.spec.stages:
        for needed in stage.needs:
            if needed == stage.name:
                problems.append(f"stage {stage.name!r}: needs itself")
            elif needed not in names:
                problems.append(f"stage {stage.name!r}: needs {needed!r}, which is not a "
                                f"stage{_near(needed, names)}")
    if problems:
        return problems
    cycle = _find_cycle(spec)
    if cycle:
        return [f"stage {cycle[0]!r}: its needs form a cycle ({' needs '.join(cycle)}); "
                "a stage cannot wait for itself"]
    for stage in spec.spec.stages:
        ancestors = spec.upstream(stage.name)
        for text in strings([stage.block, stage.output]):
            for ref in _REFERENCE.finditer(text):
                inner, written = ref.group(1), ref.group(0)
                target = _STAGE_OUTPUT.match(inner)
                if target:
                    other = target.group(1)
                    if other not in names:
                        problems.append(f"stage {stage.name!r}: {written} names no stage"
                                        f"{_near(other, names)}")
                    elif other == stage.name:
                        problems.append(f"stage {stage.name!r}: {written} is its own "
                                        "output; write ${output}")
                    elif other not in ancestors:
                        problems.append(f"stage {stage.name!r}: refers to {written} but does "
                                        f"not need {other!r}; add needs: [{other}] so it "
                                        "runs after it")
                    elif spec.stages[other].declared_output() is None:
                        problems.append(
                            f"stage {stage.name!r}: {written}: stage {other!r} declares no "
                            "output; give it output: PATH (a dataframe stage's output.path "
                            "and an sklearn stage's batch_predict.output.path count)")
                elif inner == "output":
                    if stage.output is None:
                        problems.append(f"stage {stage.name!r}: {written} needs output: PATH "
                                        "on the stage")
                    elif text is stage.output:
                        problems.append(f"stage {stage.name!r}: output cannot refer to itself")
                elif inner.startswith(("stages", "output")):
                    problems.append(f"stage {stage.name!r}: {written} is not a reference "
                                    "shipyard knows; write ${stages.NAME.output} or ${output}")
    return problems


def _find_cycle(spec: PipelineSpec) -> list[str] | None:
    stages = spec.stages
    state: dict[str, int] = {}  # 1 on the current path, 2 finished

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for needed in stages[name].needs:
            if state.get(needed) == 1:
                return path[path.index(needed):] + [needed]
            if needed not in state:
                found = visit(needed, path + [needed])
                if found:
                    return found
        state[name] = 2
        return None

    for name in stages:
        if name not in state:
            cycle = visit(name, [name])
            if cycle:
                return cycle
    return None


def load_pipeline(document: dict[str, Any], name: str = "the pipeline spec",
                  base_dir: str | None = None, *, check_references: bool = True) -> PipelineSpec:
    """Validate a ``kind: Pipeline`` document: its shape, its stage graph, and every stage
    as the job spec it becomes.

    Raises
    ------
    SpecError
        Listing every problem, each naming its stage (exit code 2 on the CLI).
    """
    title = f"{name} is not a valid pipeline spec"
    try:
        spec = PipelineSpec.model_validate(document)
    except ValidationError as err:
        raise SpecError(title, describe_errors(err, PipelineSpec)) from None
    spec._source, spec._base_dir = name, base_dir
    problems = _graph_problems(spec)
    if problems:
        raise SpecError(title, problems)
    for stage_name in spec.order:
        try:
            # inputs an earlier stage writes do not exist yet: their schemas are read
            # when the stage runs
            load_job(spec.stage_document(stage_name), check_references=check_references,
                     check_inputs=not spec.references(stage_name), base_dir=base_dir)
        except SpecError as err:
            details = err.problems or [err.message]
            problems.extend(f"stage {stage_name!r}: {line}" for line in details)
    if problems:
        raise SpecError(title, problems)
    return spec
