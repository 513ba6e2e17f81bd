"""Parameter schemas checked fast, and explained exactly: jsonschema-rs decides, jsonschema explains.

Every submission checks its arguments against its definition's schema (Draft
2020-12). The Rust validator (a wheel) is compiled once per definition load and
answers valid/invalid in well under a microsecond, and importing it costs a quarter
of the Python validator's import, which would otherwise sit on every cold start. Only
when it says *invalid* is the Python validator imported and asked, so the problems a
caller reads are worded exactly as before (and a verdict the two would not share
goes the Python validator's way: the Rust one only ever shortcuts a *valid*). A
differential test holds them to the same verdicts on the project's schemas and the
hostile values in tests/data/.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jsonschema_rs

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError


def _python() -> type[Draft202012Validator]:
    from jsonschema import Draft202012Validator  # only for what the fast validator refused

    return Draft202012Validator


class SchemaValidator:
    """One schema, compiled once; ``problems`` of an instance, empty when it is valid."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        try:
            self._fast: jsonschema_rs.Validator | None = jsonschema_rs.Draft202012Validator(
                dict(schema), validate_formats=False
            )
        except (ValueError, jsonschema_rs.ValidationError):  # a schema it cannot compile: Python's alone
            self._fast = None

    @functools.cached_property
    def _slow(self) -> Draft202012Validator:
        return _python()(self.schema)

    def problems(self, instance: Any) -> list[ValidationError]:
        """Every way ``instance`` breaks the schema, as jsonschema words them."""
        if self._fast is not None:
            try:
                if self._fast.is_valid(instance):
                    return []
            except (ValueError, OverflowError, TypeError):
                pass
        return list(self._slow.iter_errors(instance))


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why ``schema`` is not a valid Draft 2020-12 schema (jsonschema's words); None when it is."""
    # The fast meta-check skips the "regex" format, and the two regex dialects differ: a
    # schema with a pattern is checked by jsonschema, whose ``re`` will run that pattern.
    try:
        if '"pattern"' not in json.dumps(schema) and jsonschema_rs.meta.is_valid(dict(schema)):
            return None
    except (ValueError, TypeError, jsonschema_rs.ValidationError):
        pass
    from jsonschema import SchemaError

    try:
        _python().check_schema(schema)
    except SchemaError as error:
        return error.message
    return None
