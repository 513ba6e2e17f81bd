"""Rendering a definition's Job template with a caller's arguments, safely.

The template is parsed as YAML *before* anything is rendered, so its structure is
fixed by the operator: a Jinja2 expression can only ever fill in one string value.
Caller values are passed to a sandboxed Jinja2 environment as data, so however many
newlines, colons, quotes, ``{{ }}`` or ``{% %}`` they hold, they end up verbatim in
the value they were put in and are never parsed as YAML or evaluated as template code.

A value that is exactly one expression (``"{{ count }}"``) takes the expression's
own type, so an integer parameter can fill ``parallelism``. Templates written for
k8s-jobs with an unquoted ``key: {{ expr }}`` are accepted: such a value is quoted
before parsing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jinja2
import jinja2.meta
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ._errors import DefinitionError

#: LibYAML's parser with PyYAML's safe constructor, when the wheel has it: the same values,
#: parsed in a tenth of the pure-Python parser's time (every definitions load, every render).
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)
_JINJA_MARKERS = ("{{", "{%", "{#")
# `key: {{ expr }}` or `- {{ expr }}` with nothing else on the line: YAML would read the
# braces as a flow mapping, so such a value is quoted first (k8s-jobs templates do this).
_UNQUOTED_EXPRESSION = re.compile(r"^(\s*(?:-\s+|[^\s#'\"][^:#]*:\s+))(\{\{[^\n]*?\}\})\s*$", re.M)
_SINGLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\}\}|\{\{|\{%|\{#).)*)\}\}$", re.S)

Renderer = Callable[[Mapping[str, Any]], Any]


def _quote_unquoted_expressions(text: str) -> str:
    def quote(match: re.Match[str]) -> str:
        expression = match.group(2).replace("'", "''")
        return f"{match.group(1)}'{expression}'"

    return _UNQUOTED_EXPRESSION.sub(quote, text)


def _compile_scalar(value: str, where: str) -> Renderer | None:
    """A renderer for one string value of the template, or None when it is plain text."""
    if not any(marker in value for marker in _JINJA_MARKERS):
        return None
    try:
        single = _SINGLE_EXPRESSION.match(value.strip())
        if single:
            expression = _ENVIRONMENT.compile_expression(single.group("expr"), undefined_to_none=False)
            return lambda context: _native(expression(**context))
        template = _ENVIRONMENT.from_string(value)
        return lambda context: template.render(context)
    except jinja2.TemplateSyntaxError as error:
        raise DefinitionError(f"template syntax error at {where}: {error.message}") from None


def _native(value: Any) -> Any:
    """The value of a whole-value expression, forced to a plain JSON type."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable.
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_native(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _native(item) for key, item in value.items()}
    return str(value)


class Template(Protocol):
    """What a definition renders its Job with: a ``JobTemplate``, or a registered definition's."""

    source: str
    variables: frozenset[str]

    def render(self, arguments: Mapping[str, Any]) -> dict[str, Any]: ...


class JobTemplate:
    """A Job manifest template: YAML structure fixed at load, values rendered per call."""

    def __init__(self, text: str, source: str = "template") -> None:
        self.source = source
        self.variables: frozenset[str] = frozenset()
        try:
            tree = yaml.load(_quote_unquoted_expressions(text), Loader=SAFE_LOADER)  # noqa: S506
        except yaml.YAMLError as error:
            hint = ""
            if "{%" in text:
                hint = (
                    " (Jinja statements may only appear inside a string value: "
                    "jobfn renders values, never the YAML structure)"
                )
            raise DefinitionError(f"{source} is not valid YAML: {error}{hint}") from None
        if not isinstance(tree, dict):
            raise DefinitionError(f"{source} must be one YAML mapping (a batch/v1 Job)")
        if tree.get("apiVersion") != "batch/v1" or tree.get("kind") != "Job":
            raise DefinitionError(
                f"{source} must be a batch/v1 Job, not {tree.get('apiVersion')!r}/{tree.get('kind')!r}"
            )
        variables: set[str] = set()
        self._render = self._compile(tree, "", variables)
        self.variables = frozenset(variables)

    def _compile(self, node: Any, path: str, variables: set[str]) -> Renderer:
        """A function that builds a fresh copy of ``node`` with its values rendered."""
        if isinstance(node, dict):
            parts = [(key, self._compile(value, f"{path}.{key}", variables)) for key, value in node.items()]
            return lambda context: {key: render(context) for key, render in parts}
        if isinstance(node, list):
            items = [self._compile(value, f"{path}[{i}]", variables) for i, value in enumerate(node)]
            return lambda context: [render(context) for render in items]
        if isinstance(node, str):
            renderer = _compile_scalar(node, f"{self.source} {path or '.'}")
            if renderer is not None:
                variables.update(jinja2.meta.find_undeclared_variables(_ENVIRONMENT.parse(node)))
                return renderer
        return lambda context: node

    def render(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """A new Job manifest with ``arguments`` filled in; never shares state with others."""
        try:
            job: dict[str, Any] = self._render(arguments)
        except jinja2.UndefinedError as error:
            raise DefinitionError(f"{self.source} uses an undeclared variable: {error}") from None
        except jinja2.exceptions.SecurityError as error:
            raise DefinitionError(f"{self.source} tried an unsafe operation: {error}") from None
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as error:
            raise DefinitionError(f"{self.source} failed to render: {error}") from None
        return job
