"""docs/guarantees.md (and SECURITY.md) point every promise at tests that exist."""

from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUARANTEES = ROOT / "docs" / "guarantees.md"
SECURITY = ROOT / "SECURITY.md"
TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _test_functions(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    }


def test_every_cited_test_exists() -> None:
    cited = TEST_ID.findall(GUARANTEES.read_text())
    assert len(cited) >= 40
    cited += TEST_ID.findall(SECURITY.read_text())
    missing = []
    for file, name in cited:
        path = ROOT / file
        if not path.is_file() or name not in _test_functions(path):
            missing.append(f"{file}::{name}")
    assert not missing, f"the docs cite tests that do not exist: {missing}"


def test_every_promise_and_failure_cites_a_test() -> None:
    text = GUARANTEES.read_text()
    promises = re.findall(r"^- \*\*.*?(?=^- \*\*|^## )", text, re.M | re.S)
    assert len(promises) >= 10
    for promise in promises:
        assert TEST_ID.search(promise), promise.splitlines()[0]
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| Failure")
    ]
    assert len(rows) >= 15
    for row in rows:
        assert TEST_ID.search(row), row[:60]


def test_no_placeholder_links() -> None:
    text = GUARANTEES.read_text()
    assert "](https://github.com/)" not in text
