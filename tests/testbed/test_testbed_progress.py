"""Progress of long steps reaches the terminal inside a test session, where pytest captures
standard error (a cold image build runs for minutes in the background of `make test`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_progress_lines_pass_through_pytest_capture(tmp_path: Path) -> None:
    test_file = tmp_path / "test_reports.py"
    test_file.write_text(
        textwrap.dedent(
            """
            import sys
            from assistente_testbed import progress

            def test_reports():
                print("captured line", file=sys.stderr)
                progress.report("images", "rasa-base: building")
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-p", "assistente_testbed.pytest_plugin", "--rootdir", str(tmp_path), str(test_file),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "[images] rasa-base: building" in output
    # pytest still captures everything else of a passing test.
    assert "captured line" not in output
