"""Rendering keeps caller values as data and the template's structure fixed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobfn._errors import DefinitionError
from jobfn._templating import JobTemplate

DATA = Path(__file__).parent.parent / "data"
HOSTILE = json.loads((DATA / "hostile_values.json").read_text())["values"]

TEMPLATE = """
apiVersion: batch/v1
kind: Job
metadata:
  name: demo
  annotations:
    said: "{{ value }}"
spec:
  parallelism: "{{ count }}"
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: busybox
          command: ["echo", "{{ value }}", "prefix {{ value }} suffix"]
          env:
            - {name: VALUE, value: "{{ value }}"}
"""


def shape(node: Any) -> Any:
    """The structure of a manifest with every leaf value replaced by its type."""
    if isinstance(node, dict):
        return {key: shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [shape(value) for value in node]
    return type(node).__name__


def test_hostile_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_value_stays_one_verbatim_string(value: str) -> None:
    template = JobTemplate(TEMPLATE)
    benign = template.render({"value": "x", "count": 1})
    job = template.render({"value": value, "count": 1})
    assert shape(job) == shape(benign)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["echo", value, f"prefix {value} suffix"]
    assert container["env"] == [{"name": "VALUE", "value": value}]
    assert job["metadata"]["annotations"] == {"said": value}


def test_whole_value_expression_keeps_the_argument_type() -> None:
    job = JobTemplate(TEMPLATE).render({"value": "1", "count": 4})
    assert job["spec"]["parallelism"] == 4
    assert job["metadata"]["annotations"]["said"] == "1"


def test_renders_never_share_state() -> None:
    template = JobTemplate(TEMPLATE)
    first = template.render({"value": "a", "count": 1})
    first["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    second = template.render({"value": "a", "count": 1})
    assert second["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"


def test_k8s_jobs_unquoted_expression_is_accepted_as_a_string() -> None:
    text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ name }}\nspec:\n  template: {}\n"
    template = JobTemplate(text)
    assert template.variables == {"name"}
    assert template.render({"name": "a: {b}"})["metadata"]["name"] == "a: {b}"


def test_template_statement_outside_a_value_is_refused_with_a_hint() -> None:
    text = "apiVersion: batch/v1\nkind: Job\n{% if x %}\nmetadata: {}\n{% endif %}\n"
    with pytest.raises(DefinitionError, match="inside a string value"):
        JobTemplate(text)


@pytest.mark.parametrize(
    "text",
    [
        "kind: Pod\napiVersion: v1\n",
        "- a\n- b\n",
        "apiVersion: batch/v1\nkind: Job\n---\napiVersion: batch/v1\nkind: Job\n",
    ],
)
def test_template_must_be_exactly_one_batch_v1_job(text: str) -> None:
    with pytest.raises(DefinitionError):
        JobTemplate(text)


def test_sandbox_refuses_unsafe_template_code() -> None:
    text = 'apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: "{{ x.__class__.__mro__ }}"\n'
    with pytest.raises(DefinitionError):
        JobTemplate(text).render({"x": "s"})


def test_undefined_variable_is_a_definition_error_not_an_empty_string() -> None:
    template = JobTemplate('apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: "a-{{ missing }}"\n')
    with pytest.raises(DefinitionError, match="missing"):
        template.render({})


def test_yaml_tags_in_the_template_are_not_constructed() -> None:
    text = "apiVersion: batch/v1\nkind: Job\nmetadata: !!python/object/apply:os.system ['id']\n"
    with pytest.raises(DefinitionError):
        JobTemplate(text)
