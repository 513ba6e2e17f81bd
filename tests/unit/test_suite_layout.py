"""The test suite's own hygiene: files named like tests hold tests; helpers are named as helpers."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def defines_a_test(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name.lower().startswith("test")
        for node in tree.body
    )


def test_every_module_named_like_a_test_holds_tests() -> None:
    # pytest collects test_*.py; a helper named so is imported as a test module and
    # reported as one, and hides which file holds the tests of a concept.
    modules = [p for p in TESTS.rglob("test_*.py") if "build" not in p.relative_to(TESTS).parts]
    assert modules, "no test modules found"
    assert [str(p.relative_to(TESTS)) for p in modules if not defines_a_test(p)] == []
