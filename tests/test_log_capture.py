"""tee_output: a process's and its children's output, kept in a file and still printed."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_output_of_the_process_and_its_children_is_kept_and_still_printed(tmp_path):
    script = textwrap.dedent(f"""
        import logging, subprocess, sys
        from shipyard.runtime.log_capture import tee_output

        print("before")
        with tee_output({str(tmp_path / "logs" / "attempt-1.log")!r}):
            print("from python", flush=True)
            logging.basicConfig(stream=sys.stderr)
            logging.getLogger("x").error("from logging")
            subprocess.run(["sh", "-c", "echo from a child; echo child err >&2"], check=True)
        print("after")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    kept = (tmp_path / "logs" / "attempt-1.log").read_text()
    for line in ("from python", "from logging", "from a child", "child err"):
        assert line in kept and line in proc.stdout
    assert "before" not in kept and "after" not in kept
    assert proc.stdout.splitlines()[0] == "before" and proc.stdout.splitlines()[-1] == "after"
