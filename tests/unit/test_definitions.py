"""Definitions: parsing, argument validation and hot reload."""

from __future__ import annotations

import logging
import os
import textwrap
from pathlib import Path

import pytest

from jobfn._definitions import JobDefinitions
from jobfn._definitions_file import DefinitionsFile
from jobfn._errors import (
    DefinitionError,
    DefinitionNotFound,
    DefinitionsNotLoaded,
    InvalidArguments,
    Unavailable,
)

CORE = Path(__file__).parent.parent / "data" / "definitions" / "core.yaml"
JOB = """
      apiVersion: batch/v1
      kind: Job
      metadata: {name: x}
      spec:
        template:
          spec:
            restartPolicy: Never
            containers: [{name: main, image: "{{ image }}"}]
"""


def definitions_yaml(name: str = "one", image_default: str = "busybox") -> str:
    return f"""
definitions:
  - name: {name}
    parameters:
      image: {{type: string, default: {image_default}}}
    template: |{JOB}"""


@pytest.fixture
def core() -> JobDefinitions:
    return JobDefinitions.from_yaml(CORE.read_text())


def test_every_argument_problem_is_reported_at_once(core: JobDefinitions) -> None:
    echo = core.get("echo")
    with pytest.raises(InvalidArguments) as caught:
        echo.validate({"message": 7, "repeat": 11, "mode": "shout", "tag": "UPPER", "extra": 1})
    problems = caught.value.problems
    assert len(problems) == 5
    assert any(p.startswith("extra: not a parameter of 'echo'") for p in problems)
    assert any(p.startswith("repeat:") and "maximum" in p for p in problems)
    assert any(p.startswith("mode:") for p in problems)
    assert any(p.startswith("tag:") and "match" in p for p in problems)
    assert any(p.startswith("message:") and "string" in p for p in problems)


def test_missing_required_argument_is_named(core: JobDefinitions) -> None:
    with pytest.raises(InvalidArguments, match="'message' is a required property"):
        core.get("echo").validate({})


def test_defaults_are_filled_in(core: JobDefinitions) -> None:
    assert core.get("echo").validate({"message": "hi"}) == {
        "message": "hi",
        "repeat": 1,
        "mode": "plain",
        "tag": "abc",
    }


def test_arguments_must_be_an_object(core: JobDefinitions) -> None:
    with pytest.raises(InvalidArguments, match="JSON object"):
        core.get("echo").validate(["message"])


def test_huge_value_is_refused_with_a_short_message(core: JobDefinitions) -> None:
    with pytest.raises(InvalidArguments) as caught:
        core.get("echo").validate({"message": "y" * 100_000})
    assert len(str(caught.value)) < 1000


def test_k8s_jobs_definition_gets_a_required_string_per_template_variable(core: JobDefinitions) -> None:
    legacy = core.get("legacy")
    assert legacy.schema()["required"] == ["name"]
    assert legacy.parameters == {"name": {"type": "string"}}


def test_bare_list_format_of_k8s_jobs_is_read() -> None:
    text = "- name: a\n  spec: |" + JOB.replace('"{{ image }}"', "busybox")
    assert JobDefinitions.from_yaml(text).names() == ["a"]


def test_template_path_is_read_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(textwrap.dedent(JOB))
    text = "- name: a\n  template_path: job.yaml\n  parameters: {image: string}\n"
    definition = JobDefinitions.from_yaml(text, tmp_path).get("a")
    assert definition.template_file == tmp_path / "job.yaml"


def test_unknown_definition_names_the_known_ones(core: JobDefinitions) -> None:
    with pytest.raises(DefinitionNotFound, match="defined: echo, fail, legacy, queued, sleep"):
        core.get("nope")


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        ("parameters: {image: {type: object}}", "type"),
        ("parameters: {image: {type: string, bogus: 1}}", "unknown keys"),
        ("parameters: {image: {type: integer, default: x}}", "default is invalid"),
        ("parameters: {}", "undeclared variables"),
        ("allowed_overrides: [everything]", "unknown names"),
        ("max_array_size: -1", "max_array_size"),
        ("retention: {forever: 1}", "retention"),
    ],
)
def test_invalid_definition_names_its_problem(snippet: str, problem: str) -> None:
    parameters = "" if "parameters" in snippet else "  parameters: {image: string}\n"
    text = f"- name: bad\n  {snippet}\n{parameters}  template: |{JOB}"
    with pytest.raises(DefinitionError, match=problem):
        JobDefinitions.from_yaml(text)


def test_two_definitions_cannot_share_an_event_type() -> None:
    one = f"- name: a\n  event_types: [t]\n  parameters: {{image: string}}\n  template: |{JOB}"
    two = one.replace("name: a", "name: b")
    with pytest.raises(DefinitionError, match="event type 't'"):
        JobDefinitions.from_yaml(one + "\n" + two)


def test_definitions_describe_their_parameters(core: JobDefinitions) -> None:
    described = {d["name"]: d for d in core.describe()}
    assert described["echo"]["parameters"]["properties"]["repeat"]["maximum"] == 10
    assert described["echo"]["allowed_overrides"] == sorted(described["echo"]["allowed_overrides"])


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` the way editors and kubectl-updated volumes do: write aside, rename."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_edit_takes_effect_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "definitions.yaml"
    path.write_text(definitions_yaml("one"))
    source = DefinitionsFile(path, reload_interval_seconds=0)
    assert source.current().names() == ["one"]
    write_atomically(path, definitions_yaml("two"))
    assert source.current().names() == ["two"]


def test_configmap_symlink_swap_is_seen(tmp_path: Path) -> None:
    """A ConfigMap volume points `..data` at a new timestamped directory on update."""
    first, second = tmp_path / "..2026_01", tmp_path / "..2026_02"
    first.mkdir()
    second.mkdir()
    (first / "definitions.yaml").write_text(definitions_yaml("one"))
    (second / "definitions.yaml").write_text(definitions_yaml("two"))
    (tmp_path / "..data").symlink_to(first.name)
    (tmp_path / "definitions.yaml").symlink_to("..data/definitions.yaml")
    source = DefinitionsFile(tmp_path / "definitions.yaml", reload_interval_seconds=0)
    assert source.current().names() == ["one"]
    (tmp_path / "..data_tmp").symlink_to(second.name)
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert source.current().names() == ["two"]


def test_broken_edit_keeps_the_last_good_definitions_and_logs_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "definitions.yaml"
    path.write_text(definitions_yaml("one"))
    source = DefinitionsFile(path, reload_interval_seconds=0)
    assert source.current().names() == ["one"]
    write_atomically(path, definitions_yaml("one").replace("type: string", "type: strange"))
    with caplog.at_level(logging.ERROR):
        assert source.current().names() == ["one"]
    assert "strange" in (source.last_error or "")
    assert any("keeping the last good definitions" in r.getMessage() for r in caplog.records)
    write_atomically(path, definitions_yaml("three"))
    assert source.current().names() == ["three"]
    assert source.last_error is None


def test_no_good_definitions_yet_is_unavailable_naming_no_path(tmp_path: Path) -> None:
    source = DefinitionsFile(tmp_path / "missing.yaml")
    with pytest.raises(DefinitionsNotLoaded, match="No such file") as raised:
        source.current()
    assert raised.value.status == 503 and raised.value.retry_after >= 1
    assert str(tmp_path) not in raised.value.message and "missing.yaml" not in raised.value.message


def test_a_config_map_read_that_fails_while_the_api_is_unreachable_is_retried(tmp_path: Path) -> None:
    """The reader stands in for the API server (the real one: tests/integration/test_template_config_map)."""
    answers: list[str | Unavailable] = [Unavailable("connection refused"), JOB.replace("{{ message }}", "x")]

    def read_config_map(namespace: str, name: str, key: str) -> str:
        answer = answers[0] if len(answers) == 1 else answers.pop(0)
        if isinstance(answer, Unavailable):
            raise answer
        return answer

    path = tmp_path / "definitions.yaml"
    path.write_text("- name: held\n  template_config_map: {name: templates, key: job.yaml}\n")
    source = DefinitionsFile(path, reload_interval_seconds=0, read_config_map=read_config_map)
    with pytest.raises(DefinitionsNotLoaded, match="connection refused"):
        source.current()
    assert source.current().names() == ["held"]
