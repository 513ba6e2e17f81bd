"""Job definitions: the definitions file, parameter schemas and hot reload.

The file lists definitions, either as a bare YAML list (k8s-jobs' format) or under a
``definitions:`` key. Each has a name, a Job template (``template`` inline,
``template_path``, or ``template_config_map``; k8s-jobs' ``spec``, ``spec_path`` and
``spec_config_map_name``/``_namespace`` are read too) and typed parameters. When a
definition declares no parameters (a k8s-jobs definition), every variable its
template uses becomes a required string parameter. A ``queues:`` key beside
``definitions:`` lists the job queues (see ``queues``). ``_definitions_file`` keeps a
file's definitions current.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from ._contract import is_label_value
from ._errors import DefinitionError, DefinitionNotFound, InvalidArguments
from ._queues import JobQueues, parse_queues
from ._retry_rules import RetryRule
from ._submission import OVERRIDE_NAMES
from ._templating import SAFE_LOADER, JobTemplate, Template
from ._validation import SchemaValidator, schema_problem

#: Reads key ``key`` of ConfigMap ``name`` in ``namespace`` (supplied by the manager).
ConfigMapReader = Callable[[str, str, str], str]

_PARAMETER_TYPES = ("string", "integer", "number", "boolean", "array")
_PARAMETER_KEYS = {
    "type", "default", "description", "enum", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "items",
    "minItems", "maxItems", "uniqueItems", "format",
}  # fmt: skip
_DEFINITION_KEYS = {
    "name", "description", "template", "template_path", "template_config_map",
    "spec", "spec_path", "spec_config_map_name", "spec_config_map_namespace",
    "parameters", "retention", "max_active_deadline_seconds", "max_array_size",
    "allowed_overrides", "event_types", "max_active_jobs", "labels", "allowed_subjects",
}  # fmt: skip
_MAX_MESSAGE_VALUE = 80


@dataclass(frozen=True)
class Retention:
    """How long a finished job is kept, in seconds; None leaves it to the reaper's default."""

    succeeded: int | None = None
    failed: int | None = None


@dataclass(frozen=True)
class JobDefinition:
    """One named, parameterised Job template and the rules for submitting it."""

    name: str
    template: Template
    parameters: Mapping[str, Mapping[str, Any]]
    description: str = ""
    retention: Retention = field(default_factory=Retention)
    max_active_deadline_seconds: int | None = None
    max_array_size: int | None = None
    allowed_overrides: frozenset[str] = frozenset()
    event_types: tuple[str, ...] = ()
    max_active_jobs: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    allowed_subjects: tuple[str, ...] = ()
    """Authenticated subjects that may submit; empty means any authenticated caller."""
    template_file: Path | None = None
    """The file the template was read from, watched for edits like the definitions file."""
    revision: int | None = None
    """A registered definition's revision (AWS Batch's); None for the definitions file's."""
    max_cpu: Decimal | None = None
    """Most CPU a container may ask for, overrides included (a registered definition's bound)."""
    max_memory_bytes: int | None = None
    """Most memory a container may ask for, overrides included (a registered definition's bound)."""
    retry_rules: tuple[RetryRule, ...] = ()
    """AWS Batch's evaluateOnExit of a registered definition (a submission's own replace them)."""
    cpu_request_ratio: Decimal | None = None
    """The share of its CPU a registered definition's containers request (the operator's overcommit)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_validator", SchemaValidator(self.schema()))

    def schema(self) -> dict[str, Any]:
        """The JSON Schema arguments must satisfy."""
        return {
            "type": "object",
            "properties": {name: dict(spec) for name, spec in self.parameters.items()},
            "required": sorted(n for n, spec in self.parameters.items() if "default" not in spec),
            "additionalProperties": False,
        }

    def validate(self, arguments: Any) -> dict[str, Any]:
        """The arguments with defaults filled in; raises InvalidArguments listing every problem."""
        if not isinstance(arguments, Mapping):
            raise InvalidArguments(
                f"arguments of '{self.name}' must be a JSON object, not {type(arguments).__name__}"
            )
        problems = [
            f"{key!s:.{_MAX_MESSAGE_VALUE}}: not a parameter of '{self.name}' "
            f"(its parameters: {', '.join(sorted(self.parameters)) or 'none'})"
            for key in arguments
            if key not in self.parameters
        ]
        validator: SchemaValidator = self._validator  # type: ignore[attr-defined]
        for error in validator.problems(arguments):
            if error.validator == "additionalProperties":
                continue  # reported above, with the list of real parameters
            where = ".".join(str(p) for p in error.absolute_path) or "arguments"
            problems.append(f"{where}: {_short(error.message)}")
        if problems:
            problems.sort()
            raise InvalidArguments(f"invalid arguments for '{self.name}': " + "; ".join(problems), problems)
        complete = {n: spec["default"] for n, spec in self.parameters.items() if "default" in spec}
        complete.update(arguments)
        return complete

    def describe(self) -> dict[str, Any]:
        """What a caller needs to know to submit this definition."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.schema(),
            "allowed_overrides": sorted(self.allowed_overrides),
            "max_active_deadline_seconds": self.max_active_deadline_seconds,
            "max_array_size": self.max_array_size,
            "max_active_jobs": self.max_active_jobs,
            "event_types": list(self.event_types),
            "retention": {
                "succeeded": self.retention.succeeded,
                "failed": self.retention.failed,
            },
        }


def _short(message: str) -> str:
    return message if len(message) <= 300 else message[:297] + "..."


class JobDefinitions:
    """An immutable set of loaded definitions. ``current()`` returns itself, so a static
    set and a ``DefinitionsFile`` can be used interchangeably."""

    def __init__(self, definitions: Iterable[JobDefinition] = (), queues: JobQueues | None = None) -> None:
        self.queues = queues if queues is not None else JobQueues()
        """The file's ``queues:``: where jobs may be submitted, and what each queue adds."""
        self._by_name: dict[str, JobDefinition] = {}
        self._by_event_type: dict[str, JobDefinition] = {}
        for definition in definitions:
            if definition.name in self._by_name:
                raise DefinitionError(f"definition '{definition.name}' is listed twice")
            self._by_name[definition.name] = definition
            for event_type in definition.event_types:
                other = self._by_event_type.get(event_type)
                if other is not None:
                    raise DefinitionError(
                        f"event type '{event_type}' is declared by both "
                        f"'{other.name}' and '{definition.name}'"
                    )
                self._by_event_type[event_type] = definition

    def current(self) -> JobDefinitions:
        return self

    def get(self, name: str) -> JobDefinition:
        """The definition called ``name``; raises DefinitionNotFound naming what exists."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._by_name)) or "none"
            raise DefinitionNotFound(
                f"no job definition named {str(name)[:_MAX_MESSAGE_VALUE]!r} (defined: {known})"
            ) from None

    def for_event_type(self, event_type: str) -> JobDefinition:
        """The definition a CloudEvent of ``event_type`` submits."""
        try:
            return self._by_event_type[event_type]
        except KeyError:
            known = ", ".join(sorted(self._by_event_type)) or "none"
            raise DefinitionNotFound(
                f"no job definition accepts events of type "
                f"{event_type[:_MAX_MESSAGE_VALUE]!r} (accepted: {known})"
            ) from None

    def __iter__(self) -> Any:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def describe(self) -> list[dict[str, Any]]:
        return [self._by_name[name].describe() for name in self.names()]

    @classmethod
    def from_yaml(
        cls,
        text: str,
        base_dir: Path = Path("."),
        read_config_map: ConfigMapReader | None = None,
    ) -> JobDefinitions:
        """Parse a definitions file's contents; raises DefinitionError naming the problem."""
        try:
            document = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
        except yaml.YAMLError as error:
            raise DefinitionError(f"definitions file is not valid YAML: {error}") from None
        queues = JobQueues()
        if isinstance(document, dict) and ("definitions" in document or "queues" in document):
            queues = parse_queues(
                document.get("queues"),
                document.get("compute_environments"),
                document.get("default_compute_environment"),
            )
            document = document.get("definitions")
        if document is None:
            document = []
        if not isinstance(document, list):
            raise DefinitionError("definitions file must be a list of definitions")
        return cls((parse_definition(item, base_dir, read_config_map) for item in document), queues)


def parse_definition(
    raw: Any, base_dir: Path = Path("."), read_config_map: ConfigMapReader | None = None
) -> JobDefinition:
    """One definition from its YAML mapping."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise DefinitionError(f"each definition needs a 'name': got {str(raw)[:100]}")
    name = raw["name"]

    def fail(problem: str) -> DefinitionError:
        return DefinitionError(f"definition '{name}': {problem}")

    unknown = set(raw) - _DEFINITION_KEYS
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}")
    if not is_label_value(name):
        raise fail("the name must be a valid label value (letters, digits, '-', '_', '.')")
    template = JobTemplate(_template_text(raw, base_dir, read_config_map, fail), f"definition '{name}'")
    parameters = _parameters(raw.get("parameters"), template, fail)
    overrides = frozenset(_string_list(raw, "allowed_overrides", fail))
    if overrides - set(OVERRIDE_NAMES):
        raise fail(
            f"allowed_overrides has unknown names {sorted(overrides - set(OVERRIDE_NAMES))} "
            f"(known: {', '.join(OVERRIDE_NAMES)})"
        )
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(v, str) and is_label_value(v) for v in labels.values()
    ):
        raise fail("labels must map label keys to valid label values")
    retention = raw.get("retention") or {}
    if not isinstance(retention, dict) or set(retention) - {"succeeded", "failed"}:
        raise fail("retention takes 'succeeded' and 'failed', in seconds")
    return JobDefinition(
        name=name,
        template=template,
        parameters=parameters,
        description=str(raw.get("description") or ""),
        retention=Retention(
            succeeded=_optional_int(retention, "succeeded", fail),
            failed=_optional_int(retention, "failed", fail),
        ),
        max_active_deadline_seconds=_optional_int(raw, "max_active_deadline_seconds", fail),
        max_array_size=_optional_int(raw, "max_array_size", fail),
        allowed_overrides=overrides,
        event_types=tuple(_string_list(raw, "event_types", fail)),
        max_active_jobs=_optional_int(raw, "max_active_jobs", fail),
        labels=dict(labels),
        allowed_subjects=tuple(_string_list(raw, "allowed_subjects", fail)),
        template_file=_template_file(raw, base_dir),
    )


def _template_file(raw: Mapping[str, Any], base_dir: Path) -> Path | None:
    path = raw.get("template_path", raw.get("spec_path"))
    return base_dir / path if isinstance(path, str) else None


def _template_text(
    raw: Mapping[str, Any],
    base_dir: Path,
    read_config_map: ConfigMapReader | None,
    fail: Callable[[str], DefinitionError],
) -> str:
    inline = raw.get("template", raw.get("spec"))
    path = raw.get("template_path", raw.get("spec_path"))
    config_map = raw.get("template_config_map")
    if config_map is None and raw.get("spec_config_map_name"):
        # k8s-jobs: the ConfigMap's name is also the key holding the spec.
        config_map = {
            "name": raw["spec_config_map_name"],
            "namespace": raw.get("spec_config_map_namespace"),
            "key": raw["spec_config_map_name"],
        }
    given = [source for source in (inline, path, config_map) if source is not None]
    if len(given) != 1:
        raise fail("give exactly one of template, template_path or template_config_map")
    if isinstance(inline, dict):
        return json.dumps(inline)  # an inline mapping is already structure: JSON is YAML
    if isinstance(inline, str):
        return inline
    if isinstance(path, str):
        try:
            return (base_dir / path).read_text(encoding="utf-8")
        except OSError as error:
            raise fail(f"cannot read template_path {path!r}: {error.strerror}") from None
    if isinstance(config_map, dict) and config_map.get("name"):
        if read_config_map is None:
            raise fail("template_config_map needs a Kubernetes connection")
        cm_name = str(config_map["name"])
        namespace = str(config_map.get("namespace") or "")
        key = str(config_map.get("key") or "template")
        return read_config_map(namespace, cm_name, key)
    raise fail("the template must be a string, a path or a ConfigMap reference")


def _parameters(
    raw: Any, template: JobTemplate, fail: Callable[[str], DefinitionError]
) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {name: {"type": "string"} for name in sorted(template.variables)}
    if not isinstance(raw, dict):
        raise fail("parameters must map parameter names to their declarations")
    parameters: dict[str, dict[str, Any]] = {}
    for name, spec in raw.items():
        spec = {"type": spec} if isinstance(spec, str) else dict(spec or {})
        spec.setdefault("type", "string")
        if spec["type"] not in _PARAMETER_TYPES:
            raise fail(f"parameter '{name}' has type {spec['type']!r}; use one of {_PARAMETER_TYPES}")
        unknown = set(spec) - _PARAMETER_KEYS
        if unknown:
            raise fail(f"parameter '{name}' has unknown keys {sorted(unknown)}")
        problem = schema_problem(spec)
        if problem is not None:
            raise fail(f"parameter '{name}' is not a valid schema: {problem}")
        if "default" in spec:
            problems = SchemaValidator(spec).problems(spec["default"])
            if problems:
                raise fail(f"parameter '{name}' default is invalid: {problems[0].message}")
        parameters[str(name)] = spec
    undeclared = template.variables - set(parameters)
    if undeclared:
        raise fail(f"the template uses undeclared variables {sorted(undeclared)}")
    return parameters


def _optional_int(raw: Mapping[str, Any], key: str, fail: Callable[[str], DefinitionError]) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise fail(f"{key} must be a whole number of zero or more, not {value!r}")
    return value


def _string_list(raw: Mapping[str, Any], key: str, fail: Callable[[str], DefinitionError]) -> list[str]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(f"{key} must be a list of strings")
    return value
