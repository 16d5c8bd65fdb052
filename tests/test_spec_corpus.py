"""The malformed-spec corpus: every file exits 2 with a message naming the field,
prints no traceback, and writes nothing to the job store."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from shipyard.cli import cli
from helpers import shipyard

CORPUS = sorted((Path(__file__).parent / "specs" / "invalid").glob("*.yaml"))
#: files with no room for an `# expect:` comment
EXPECT_WITHOUT_COMMENT = {"01-empty.yaml": "is empty; a job spec is a mapping"}


def expected_messages(path: Path) -> list[str]:
    if path.name in EXPECT_WITHOUT_COMMENT:
        return [EXPECT_WITHOUT_COMMENT[path.name]]
    lines = [line.split("# expect:", 1)[1].strip() for line in path.read_text().splitlines()
             if line.startswith("# expect:")]
    assert lines, f"{path.name} has no '# expect:' line"
    return lines


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_validate_rejects_with_a_message_naming_the_field(home, path):
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    for expected in expected_messages(path):
        assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not home.exists()


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_submit_rejects_and_writes_nothing(home, path):
    proc = shipyard("submit", str(path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    for expected in expected_messages(path):
        assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    # nothing in the store: not even the database file, and no run directory
    assert not (home / "jobs.db").exists()
    assert not (home / "runs").exists()
