"""Names the code shares are spelled in one module: a second spelling can drift from the first."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = (ROOT / "function", ROOT / "reaper")


def package_modules() -> Iterator[Path]:
    # function/reaper is a symlink to reaper/: each file once, by its real path.
    yield from sorted({path.resolve() for folder in PACKAGE_FOLDERS for path in folder.rglob("*.py")})


def string_constants(path: Path) -> Iterator[str]:
    """The string literals of a module, docstrings left out (prose may mention any name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # A string standing alone as a statement is a docstring (of a module, class, function or field).
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value


def modules_spelling(text: str) -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for path in package_modules()
        if any(text in constant for constant in string_constants(path))
    )


@pytest.mark.parametrize("name", ["JOB_SIGNATURE", "JOB_NAMESPACE", "JOB_DEFINITIONS_CONFIG_PATH"])
def test_contract_environment_names_are_spelled_once(name: str) -> None:
    assert modules_spelling(name) == ["function/_contract.py"]
