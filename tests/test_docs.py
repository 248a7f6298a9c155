"""Every Python code block in the docs and the README runs, as written."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _snippets() -> list[Any]:
    params = []
    for path in SOURCES:
        for index, match in enumerate(BLOCK.finditer(path.read_text())):
            name = f"{path.relative_to(ROOT)}#{index + 1}"
            params.append(pytest.param(match.group(1), id=name))
    return params


@pytest.mark.parametrize("code", _snippets())
def test_snippet_runs(code: str, tmp_path: pathlib.Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_docs_have_snippets() -> None:
    assert len(_snippets()) >= 10
