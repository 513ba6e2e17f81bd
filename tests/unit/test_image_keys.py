"""The local images' cache keys: read from the Containerfile, changed by exactly what goes in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.containerfile import ContainerfileError, inputs_digest, read_inputs

CONTAINERFILE = """\
# a comment
FROM python:3.11-slim
ENV A=1 \\
    B=2
COPY --chown=10001:10001 deploy/app/requirements.txt /tmp/requirements.txt
COPY ["app/", "/app/app/"]
COPY --from=builder /out /out
RUN true
"""
BASES = {"python:3.11-slim": "base-key-1"}


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "deploy" / "app").mkdir(parents=True)
    (tmp_path / "deploy" / "app" / "Containerfile").write_text(CONTAINERFILE)
    (tmp_path / "deploy" / "app" / "requirements.txt").write_text("flask==3.1.3\n")
    (tmp_path / "app" / "__pycache__").mkdir(parents=True)
    (tmp_path / "app" / "main.py").write_text("print('hi')\n")
    (tmp_path / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not copied\n")
    (tmp_path / ".dockerignore").write_text("# bytecode\n**/__pycache__\n")
    return tmp_path


def _key(context: Path, bases: dict[str, str] = BASES) -> str:
    return inputs_digest(context / "deploy" / "app" / "Containerfile", context, bases)


def test_sources_and_bases_come_from_the_containerfile(context: Path) -> None:
    inputs = read_inputs(context / "deploy" / "app" / "Containerfile")

    assert inputs.base_images == ("python:3.11-slim",)
    assert inputs.copied_sources == ("deploy/app/requirements.txt", "app/")  # --from copies no context


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: (c / "app" / "main.py").write_text("print('changed')\n"),
        lambda c: (c / "app" / "new.py").write_text(""),
        lambda c: (c / "deploy" / "app" / "requirements.txt").write_text("flask==3.1.4\n"),
        lambda c: (c / "deploy" / "app" / "Containerfile").write_text(CONTAINERFILE + "USER 1\n"),
        lambda c: (c / "app" / "main.py").chmod(0o755),
    ],
    ids=["code", "new-file", "requirements", "containerfile", "executable-bit"],
)
def test_what_goes_in_changes_the_key(context: Path, edit: Callable[[Path], object]) -> None:
    before = _key(context)
    edit(context)

    assert _key(context) != before


def test_what_stays_out_keeps_the_key(context: Path) -> None:
    before = _key(context)
    (context / "other" / "notes.txt").write_text("edited\n")
    (context / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\1")  # .dockerignore'd

    assert _key(context) == before


def test_a_new_base_changes_the_key(context: Path) -> None:
    assert _key(context, {"python:3.11-slim": "base-key-2"}) != _key(context)


def test_a_base_that_is_not_built_here_is_refused(context: Path) -> None:
    with pytest.raises(ContainerfileError, match="not an image built here"):
        _key(context, {})


def test_a_missing_copy_source_is_refused(context: Path) -> None:
    (context / "deploy" / "app" / "requirements.txt").unlink()

    with pytest.raises(ContainerfileError, match="not in the build context"):
        _key(context)


def test_the_project_containerfiles_are_readable() -> None:
    repo = Path(__file__).resolve().parents[2]
    for name in ("function", "reaper"):
        inputs = read_inputs(repo / "deploy" / name / "Containerfile")
        assert inputs.base_images == ("python:3.11-slim",)
        assert f"deploy/{name}/requirements.txt" in inputs.copied_sources
