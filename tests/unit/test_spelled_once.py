"""Names the code shares are spelled in one module: a second spelling can drift from the first."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobfn._aws_batch import AWS_BATCH_ACTIONS
from jobfn._aws_batch.actions import ACTIONS

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


def modules_where(found: Callable[[ast.AST], bool]) -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for path in package_modules()
        if any(found(node) for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
    )


def test_the_gpu_resource_name_is_spelled_once() -> None:
    assert modules_spelling("nvidia.com/gpu") == ["function/_contract.py"]


def test_one_token_codec_encodes_every_listing_token() -> None:
    def uses_base64(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and "b64" in node.attr

    # The kubeconfig reader decodes the file's certificate data: base64, but no listing token.
    assert modules_where(uses_base64) == ["function/_kube_config.py", "function/_paging.py"]


def test_one_json_log_formatter_serves_function_and_reaper() -> None:
    def defines_formatter(node: ast.AST) -> bool:
        return isinstance(node, ast.ClassDef) and any("Formatter" in ast.unparse(b) for b in node.bases)

    assert modules_where(defines_formatter) == ["function/_logs.py"]


def test_one_list_of_aws_batch_actions() -> None:
    def names_an_action(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and node.value in ("submitjob", "SubmitJob")

    # The API's list lives in the package (routing reads it without importing the door); the
    # table of served actions in actions.py, checked against it below.
    assert modules_where(names_an_action) == [
        "function/_aws_batch/__init__.py",
        "function/_aws_batch/actions.py",
    ]
    assert set(ACTIONS) <= AWS_BATCH_ACTIONS, "every served action is an action of the AWS Batch API"
