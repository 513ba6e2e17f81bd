"""The fast validator (jsonschema-rs) never accepts what jsonschema refuses, on the project's schemas.

Every parameter schema of every definition under tests/data/definitions, and schemas using
each keyword a parameter may declare, against the hostile values, their neighbours in
every JSON type, and each definition's own argument shapes. The fast validator may only
shortcut a *valid*: where it refuses what jsonschema accepts (Python's ``$`` also matches
before a final newline, ECMA's does not), jsonschema is asked and its verdict stands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import yaml

from jobfn._definitions import JobDefinitions
from jobfn._validation import SchemaValidator, schema_problem

DATA = Path(__file__).resolve().parents[1] / "data"
HOSTILE = json.loads((DATA / "hostile_values.json").read_text())
KEYWORD_SCHEMAS: list[dict[str, Any]] = [
    {"type": "string", "minLength": 2, "maxLength": 5},
    {"type": "string", "pattern": "^[a-z]{1,8}$"},
    {"type": "string", "pattern": "\\d+"},
    {"type": "string", "pattern": "^\\w+$"},
    {"type": "string", "enum": ["plain", "loud", "1", "null"]},
    {"type": "string", "format": "email"},
    {"type": "string", "format": "date-time"},
    {"type": "integer", "minimum": 1, "maximum": 10},
    {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
    {"type": "number", "minimum": -1.5, "maximum": 1e300},
    {"type": "number", "enum": [1, 2.5]},
    {"type": "boolean"},
    {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
    {"type": "array"},
]


def _definition_schemas() -> list[dict[str, Any]]:
    schemas = []
    for path in sorted((DATA / "definitions").glob("*.yaml")):
        text = path.read_text()
        definitions = JobDefinitions.from_yaml(text, path.parent, read_config_map=lambda *_: "{}")
        for definition in definitions:
            schemas.append(definition.schema())
            schemas.extend(dict(spec) for spec in definition.parameters.values())
        assert yaml.safe_load(text)  # the file was read, not skipped
    return schemas


def _instances() -> list[Any]:
    values: list[Any] = [*HOSTILE["values"], HOSTILE.get("too_long")]
    values += [None, True, False, 0, 1, -1, 1.0, 1.5, 2**63, 2**64 + 1, -(2**70), 1e300, -0.0, 10, 11, 3]
    values += ["", "a", "ab", "abcdef", "plain", "loud", "١٢٣", "ǅ", "a\n", "abc\n", "x" * 5000]
    values += [[], ["a"], ["a", "a"], [1, 1], [1, 2], [1, "a"], ["a", "b", "c", "d"], {}, {"a": 1}]
    values += ["user@example.com", "not an email", "2026-11-28T11:19:00Z", "2026-13-99"]
    return values


def _objects(schema: dict[str, Any]) -> list[Any]:
    """Argument objects for a definition's whole schema: each property set to each value."""
    properties = schema.get("properties") or {}
    base = {name: "plain" for name in schema.get("required") or ()}
    shapes: list[Any] = [base, {}, {**base, "unknown": 1}, [], "x"]
    for name in properties:
        shapes += [{**base, name: value} for value in _instances()]
    return shapes


SCHEMAS = _definition_schemas() + KEYWORD_SCHEMAS


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s, sort_keys=True)[:60])
def test_the_fast_validator_never_accepts_what_jsonschema_refuses(schema: dict[str, Any]) -> None:
    fast = jsonschema_rs.Draft202012Validator(schema, validate_formats=False)
    exact = jsonschema.Draft202012Validator(schema)
    instances = _objects(schema) if schema.get("type") == "object" else _instances()
    accepted_wrongly = []
    for instance in instances:
        try:
            fast_verdict = fast.is_valid(instance)
        except (ValueError, OverflowError, TypeError):
            continue  # SchemaValidator then asks jsonschema alone
        if fast_verdict and not exact.is_valid(instance):
            accepted_wrongly.append(repr(instance)[:80])
    assert accepted_wrongly == []


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s, sort_keys=True)[:60])
def test_problems_are_jsonschemas_on_every_value(schema: dict[str, Any]) -> None:
    validator, exact = SchemaValidator(schema), jsonschema.Draft202012Validator(schema)
    instances = _objects(schema) if schema.get("type") == "object" else _instances()
    for instance in instances:
        problems = [error.message for error in validator.problems(instance)]
        assert problems == [error.message for error in exact.iter_errors(instance)], repr(instance)[:80]


def test_problems_are_worded_by_jsonschema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}}
    problems = SchemaValidator(schema).problems({"n": 5})
    assert [problem.message for problem in problems] == ["5 is greater than the maximum of 3"]
    assert SchemaValidator(schema).problems({"n": 2}) == []


def test_an_integer_past_64_bits_is_still_checked() -> None:
    schema = {"type": "integer", "maximum": 10}
    assert SchemaValidator(schema).problems(2**70)
    assert SchemaValidator({"type": "integer"}).problems(2**70) == []


def test_schema_problems_match_jsonschema() -> None:
    for schema in [*SCHEMAS, {"type": "nope"}, {"minimum": "x"}, {"pattern": "("}, {"enum": 1}]:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
            expected = None
        except jsonschema.SchemaError as error:
            expected = error.message
        assert schema_problem(schema) == expected, schema
