"""A seeded, mutating fuzzer of the function's three front doors.

Each ``Case`` starts as a valid request through one door and mode — REST (every
operation of the OpenAPI document), a CloudEvent in binary mode (``ce-*`` headers and
a JSON body) or structured mode (``application/cloudevents+json``), or an AWS Batch
action (``POST /v1/<action>``) — and is then mutated with a ``random.Random`` of a fixed
seed, so any run can be replayed from its seed and index.

Most cases are made invalid on purpose by one *invalidator* (a truncated body, a byte
that is not UTF-8, a field removed or of the wrong type, a name no definition has, a
wrong content type, a header sent twice, a body over the limit, ...), chosen so that no
other mutation of the same case can repair it; those must be answered 4xx and create
nothing. A few cases (``may_create``) get only harmless-looking mutations and may be
valid; they are what the run's budget of created jobs is spent on. Free mutations (byte
flips, hostile strings, odd numbers, extra attributes) are added to both kinds.
"""

from __future__ import annotations

import copy
import json
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobfn import _openapi as openapi
from tests.reliability.rawhttp import request_bytes

ECHO_TYPE = "dev.jobfn.test.echo"
CAPPED_TYPE = "dev.jobfn.test.capped"
DOORS = ("rest", "binary", "structured", "aws")
AWS_ACTIONS = (
    "describejobs", "listjobs", "canceljob", "terminatejob", "describejobdefinitions",
    "describejobqueues", "registerjobdefinition", "createjobqueue",
)  # fmt: skip

#: Strings that have broken parsers and templates before (besides tests/data/hostile_values.json).
NASTY_STRINGS = (
    "", " ", "\t\r\n", "\x00", "\x00\x01\x1f\x7f", "\u2028\u2029", "\ufeff", "\ufffd", "\U0001f680",
    "{{", "}}", "{%", "%}", "{#", "${x}", "$(id)", "\\", "\\u0000", "\\ud800", '"', "'", "`", ":", ": ", "- ",
    "---", "...", "&a", "*a", "!!str", "? ", "|", ">", "#", "%", "@", "0", "-0", "1e999", "NaN", "null",
    "true", "~", "<script>", "../../etc/passwd", "a" * 300, "é" * 150, "🚀" * 60,
)  # fmt: skip


@dataclass
class Case:
    """One request to send, with what the fuzzer knows about it."""

    index: int
    door: str
    mode: str  # the door and, for CloudEvents, binary or structured; for AWS the action
    method: str
    path: str
    headers: list[tuple[str | bytes, str | bytes]]
    document: Any  # the JSON body before serialization (None: no body)
    body: bytes = b""
    invalid_because: str | None = None  # set: refused by construction, must not be 2xx
    mutations: list[str] = field(default_factory=list)

    @property
    def may_create(self) -> bool:
        """Whether this case might create a job (a submission that no invalidator touched)."""
        return self.invalid_because is None and self.mode in ("submit", "binary", "structured", "submitjob")

    def to_bytes(self) -> bytes:
        return request_bytes(self.method, self.path, self.headers, self.body)

    def describe(self) -> str:
        return (
            f"case {self.index} ({self.door}/{self.mode}: {self.method} {self.path}; "
            f"mutations: {', '.join(self.mutations) or 'none'}; invalid because: {self.invalid_because})"
        )

    def header(self, name: str) -> str | bytes | None:
        found = [value for key, value in self.headers if str(key).lower() == name.lower()]
        return found[-1] if found else None

    def set_header(self, name: str, value: str | bytes | None) -> None:
        self.headers = [(key, old) for key, old in self.headers if str(key).lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))


class Fuzzer:
    """Makes ``Case``\\ s from a seed (not thread-safe: one per thread); ``body_limit`` is JOBFN_MAX_BODY_BYTES."""

    def __init__(self, seed: int, body_limit: int, hostile_values: Sequence[str]) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        self.body_limit = body_limit
        self.strings = tuple(hostile_values) + NASTY_STRINGS
        self.rest_operations = _rest_operations()

    # --- strings and values -----------------------------------------------------------------
    def text(self, max_length: int = 40) -> str:
        """A string that is often hostile: corpus values, nasty fragments, random code points."""
        r = self.random
        roll = r.random()
        if roll < 0.35:
            return r.choice(self.strings)[:max_length]
        if roll < 0.55:
            return "".join(r.choice(self.strings) for _ in range(r.randint(1, 3)))[:max_length]
        alphabet = (
            string.printable if roll < 0.8 else "".join(chr(r.randint(0x80, 0x2FFF)) for _ in range(20))
        )
        return "".join(r.choice(alphabet) for _ in range(r.randint(0, max_length)))

    def message(self) -> str:
        """A value the echo definition accepts (at most 200 characters, no lone surrogate)."""
        return self.text(200)

    def odd_value(self) -> Any:
        r = self.random
        return r.choice(
            [
                None, True, False, 0, -1, 2**63, 10**30, 1.5, -0.0, 1e308, "", [], {}, [1, "a"], {"a": {"b": []}},
                self.text(), [self.text()], {self.text(10): self.text()},
            ]
        )  # fmt: skip

    def name(self) -> str:
        """A job name that does not exist (or one hardly a name at all)."""
        r = self.random
        return r.choice(
            [
                "nope-" + "".join(r.choices(string.ascii_lowercase, k=8)),
                "echo-zzzzzzzz",
                "x" * 300,
                "a.b",
                "-",
                "%20",
            ]
        )

    # --- seeds ------------------------------------------------------------------------------
    def next_case(self, index: int, may_create_share: float) -> Case:
        """Case number ``index``: the same for the same seed, whatever was generated before it.

        A ``may_create_share`` of the cases (0: none) may be valid submissions.
        """
        self.random = random.Random(f"{self.seed}:{index}")
        door = self.random.choice(DOORS)
        return self.case(index, door, self.random.random() < may_create_share)

    def case(self, index: int, door: str, may_create: bool) -> Case:
        """A case through ``door``; ``may_create``: only mutations that may leave a submission valid."""
        seed = getattr(self, f"_seed_{door}")(index, may_create)
        self._free_document_mutations(seed)
        if not may_create or seed.mode not in ("submit", "binary", "structured", "submitjob"):
            self._invalidate(seed)
        seed.body = (
            b""
            if seed.document is None
            else json.dumps(seed.document, ensure_ascii=self.random.random() < 0.5).encode()
        )
        if seed.invalid_because in _BODY_INVALIDATORS:
            _BODY_INVALIDATORS[seed.invalid_because](self, seed)
        elif self.random.random() < 0.3 and (
            seed.invalid_because in _FLIP_PROOF or (seed.invalid_because is None and not may_create)
        ):
            self._flip_bytes(seed)
        return seed

    def _seed_rest(self, index: int, may_create: bool) -> Case:
        r = self.random
        if may_create or r.random() < 0.7:
            arguments: dict[str, Any] = {"message": self.message()}
            if r.random() < 0.5:
                arguments["count"] = r.randint(1, 5)
            document: dict[str, Any] = {"definition": "echo", "arguments": arguments}
            if r.random() < 0.4:
                document = {"job_definition_name": "echo", **arguments}  # k8s-jobs' body
            elif r.random() < 0.5:
                document["overrides"] = {
                    "environment": {"FUZZ": self.message()},
                    "timeout": r.randint(1, 600),
                }
                document["tags"] = {"fuzz": self.text(50)}
            headers: list[tuple[str | bytes, str | bytes]] = [("Content-Type", "application/json")]
            if r.random() < 0.3:
                headers.append(("Idempotency-Key", f"fuzz-{self.seed}-{index}"))
            return Case(index, "rest", "submit", "POST", "/jobs", headers, document)
        method, path, operation = r.choice(self.rest_operations)
        path = path.replace("{name}", self.name())
        query = [
            f"{p['name']}={self._query_value(p)}"
            for p in operation.get("parameters", [])
            if p.get("in") == "query" and r.random() < 0.5
        ]
        if query:
            path += "?" + "&".join(query)
        body: Any = None
        if path.endswith("/terminate"):
            body = {"reason": self.text()}
        elif path.endswith("/retention"):
            body = r.choice(
                [
                    {"hold": True},
                    {"delete_after": r.randint(0, 2**40)},
                    {"extend_seconds": r.randint(1, 10**6)},
                ]
            )
        return Case(
            index,
            "rest",
            method.lower() + " " + operation_name(path),
            method,
            path,
            [("Content-Type", "application/json")],
            body,
        )

    def _query_value(self, parameter: dict[str, Any]) -> str:
        r = self.random
        if parameter.get("schema", {}).get("type") == "integer":
            return str(r.choice([0, 1, 5, -1, 1000, 100001, 10**20]))
        raw = self.text(30).encode("utf-8", errors="surrogatepass")
        return "".join(
            chr(b) if chr(b) in string.ascii_letters + string.digits + "-._~" else f"%{b:02X}" for b in raw
        )

    def _event_attributes(self, index: int, may_create: bool) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": f"fuzz-{self.seed}-{index}",
            "source": "/fuzz/" + self._header_safe(self.text(20)),
            "type": ECHO_TYPE,  # "capped" only through _arguments_for_another_definition: it takes {}
        }

    def _seed_binary(self, index: int, may_create: bool) -> Case:
        attributes = self._event_attributes(index, may_create)
        headers: list[tuple[str | bytes, str | bytes]] = [(f"ce-{k}", v) for k, v in attributes.items()]
        headers.append(("Content-Type", "application/json"))
        if self.random.random() < 0.3:
            headers.append(("ce-fuzzextension", self._header_safe(self.text(30))))
        return Case(index, "events", "binary", "POST", "/", headers, self._event_data())

    def _seed_structured(self, index: int, may_create: bool) -> Case:
        document = {**self._event_attributes(index, may_create), "data": self._event_data()}
        if self.random.random() < 0.3:
            document["datacontenttype"] = "application/json"
        if self.random.random() < 0.3:
            document["fuzzextension"] = self.text(30)
        headers: list[tuple[str | bytes, str | bytes]] = [("Content-Type", "application/cloudevents+json")]
        return Case(index, "events", "structured", "POST", "/", headers, document)

    def _event_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message()}
        if self.random.random() < 0.5:
            data["count"] = self.random.randint(1, 5)
        return data

    def _seed_aws(self, index: int, may_create: bool) -> Case:
        r = self.random
        headers: list[tuple[str | bytes, str | bytes]] = [("Content-Type", "application/json")]
        if may_create or r.random() < 0.6:
            document: dict[str, Any] = {
                "jobName": f"fuzz-{index}",
                "jobQueue": r.choice(["main", "arn:aws:batch:us-east-1:000000000000:job-queue/main"]),
                "jobDefinition": r.choice(
                    ["echo", "echo:1", "arn:aws:batch:us-east-1:000000000000:job-definition/echo:3"]
                ),
                "parameters": {"message": self.message()},
            }
            if r.random() < 0.5:
                document["parameters"]["count"] = str(r.randint(1, 5))
            if r.random() < 0.4:
                document["containerOverrides"] = {"environment": [{"name": "FUZZ", "value": self.message()}]}
            if r.random() < 0.3:
                document["tags"] = {"fuzz": self.text(50)}
            return Case(index, "aws", "submitjob", "POST", "/v1/submitjob", headers, document)
        action = r.choice(AWS_ACTIONS)
        document = {
            "describejobs": {"jobs": [self.name()]},
            "listjobs": {"jobQueue": "main", "maxResults": r.randint(1, 5)},
            "canceljob": {"jobId": self.name(), "reason": self.text()},
            "terminatejob": {"jobId": self.name(), "reason": self.text()},
            "describejobdefinitions": {},
            "describejobqueues": {},
            "registerjobdefinition": {"jobDefinitionName": "x", "type": "container"},
            "createjobqueue": {"jobQueueName": "x"},
        }[action]
        return Case(index, "aws", action, "POST", f"/v1/{action}", headers, document)

    @staticmethod
    def _header_safe(text: str) -> str:
        """``text`` without what HTTP forbids in a header value (gunicorn would refuse the request)."""
        return "".join(c for c in text if " " <= c <= "~") or "x"

    # --- free mutations ---------------------------------------------------------------------
    def _free_document_mutations(self, case: Case) -> None:
        r = self.random
        for _ in range(r.randint(0, 2)):
            name = r.choice(("hostile_message", "unicode_header", "header_case"))
            if name == "hostile_message" and isinstance(case.document, dict):
                target = _arguments_of(case)
                if target is not None and "message" in target:
                    target["message"] = self.message()
                    case.mutations.append(name)
            elif name == "unicode_header" and case.door == "rest":
                printable = "".join(c for c in self.text(20) if c >= " " and c != "\x7f")
                case.set_header("X-Fuzz", printable.encode("utf-8"))
                case.mutations.append(name)
            elif name == "header_case":
                case.headers = [
                    (str(k).upper() if r.random() < 0.5 else str(k).lower(), v) for k, v in case.headers
                ]
                case.mutations.append(name)

    def _flip_bytes(self, case: Case) -> None:
        r = self.random
        data = bytearray(case.body)
        for _ in range(r.randint(1, 4)):
            if not data:
                break
            position = r.randrange(len(data))
            operation = r.random()
            if operation < 0.4:
                data[position] = r.randrange(256)
            elif operation < 0.7:
                data[position:position] = r.choice(
                    [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"\x00", b"\xc3", b"\xed\xa0\x80"]
                )
            else:
                del data[position : position + r.randint(1, 8)]
        case.body = bytes(data)
        case.mutations.append("byte_flips")

    # --- invalidators -----------------------------------------------------------------------
    def _invalidate(self, case: Case) -> None:
        """Apply one mutation that makes ``case`` invalid whatever else is done to it."""
        candidates = [name for name, applies in _INVALIDATORS.items() if applies(case)]
        if not candidates:
            return  # a non-submitting request (a GET, a describe): nothing to spoil, nothing to create
        name = self.random.choice(candidates)
        _INVALIDATOR_ACTIONS[name](self, case)
        case.invalid_because = name
        case.mutations.append(name)


def operation_name(path: str) -> str:
    parts = [part for part in path.split("?")[0].split("/") if part]
    return (
        "/".join(
            part if part in ("jobs", "definitions", "status", "logs", "terminate", "retention") else "*"
            for part in parts
        )
        or "/"
    )


def _rest_operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every operation the OpenAPI document describes, but submission."""
    document = openapi.document()
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "post", "put") and not (path == "/jobs" and method == "post")
    ]


def _arguments_of(case: Case) -> dict[str, Any] | None:
    document = case.document
    if not isinstance(document, dict):
        return None
    if case.mode == "submit":
        return document.get("arguments") if "definition" in document else document
    if case.mode == "binary":
        return document
    if case.mode == "structured":
        return document.get("data")
    if case.mode == "submitjob":
        return document.get("parameters")
    return None


def _is_submission(case: Case) -> bool:
    return case.mode in ("submit", "binary", "structured", "submitjob")


# Each invalidator: when it applies, and what it does. Names double as the reason recorded.
def _drop_required(fuzzer: Fuzzer, case: Case) -> None:
    document = copy.deepcopy(case.document)
    if case.mode == "submit":
        if "definition" in document:
            document.pop(fuzzer.random.choice(["definition", "arguments"]))  # no arguments: no message
        else:
            document.pop("job_definition_name")
    elif case.mode == "binary":
        document.pop("message", None)
    elif case.mode == "structured":
        document.pop(fuzzer.random.choice(["id", "source", "type"]))
    else:
        document.pop(fuzzer.random.choice(["jobName", "jobQueue", "jobDefinition"]))
    case.document = document


def _wrong_type(fuzzer: Fuzzer, case: Case) -> None:
    target = _arguments_of(case)
    assert target is not None
    value = fuzzer.random.choice([None, 5, 1.5, True, [], {}, ["x"], {"a": "b"}])
    if case.mode == "submitjob":
        target["message"] = value  # parameters must map names to strings
    elif fuzzer.random.random() < 0.5:
        target["message"] = value
    else:
        target["count"] = fuzzer.random.choice(["3", 1.5, True, 1000, -7, None, [2]])


def _unknown_argument(fuzzer: Fuzzer, case: Case) -> None:
    target = _arguments_of(case)
    assert target is not None
    target["undeclared-" + "".join(fuzzer.random.choices(string.ascii_lowercase, k=6))] = fuzzer.odd_value()


def _message_too_long(fuzzer: Fuzzer, case: Case) -> None:
    target = _arguments_of(case)
    assert target is not None
    # 240 and more: byte flips that delete (at most 4 x 8 bytes) cannot bring it down to 200
    target["message"] = fuzzer.message() + "m" * (240 + fuzzer.random.randint(0, 2000))


def _no_such_definition(fuzzer: Fuzzer, case: Case) -> None:
    unknown = "no-such-" + "".join(fuzzer.random.choices(string.ascii_lowercase, k=5))
    if case.mode == "submit":
        key = "definition" if "definition" in case.document else "job_definition_name"
        case.document[key] = unknown
    elif case.mode == "binary":
        case.set_header("ce-type", "dev.fuzz." + unknown)
    elif case.mode == "structured":
        case.document["type"] = "dev.fuzz." + unknown
    else:
        case.document["jobDefinition"] = unknown


def _arguments_for_another_definition(fuzzer: Fuzzer, case: Case) -> None:
    # "forever" declares no parameters and "capped" only "tag": a message is refused by either.
    if case.mode == "submit":
        key = "definition" if "definition" in case.document else "job_definition_name"
        case.document[key] = "forever"
    elif case.mode == "binary":
        case.set_header("ce-type", CAPPED_TYPE)
    elif case.mode == "structured":
        case.document["type"] = CAPPED_TYPE
    else:
        case.document["jobDefinition"] = "forever"
    target = _arguments_of(case)
    assert target is not None
    target.setdefault("message", fuzzer.message())


def _unknown_field(fuzzer: Fuzzer, case: Case) -> None:
    name = "unknownField" + "".join(fuzzer.random.choices(string.ascii_letters, k=4))
    case.document[name] = fuzzer.odd_value()


def _deep_nesting(fuzzer: Fuzzer, case: Case) -> None:
    # An argument (or field) no definition declares, nested around the limit of the parser.
    depth = fuzzer.random.choice([50, 500, 990, 1000, 1100, 5000])
    deep = b'"deep": ' + b"[" * depth + b"]" * depth + b", "
    if case.mode == "structured":
        case.body = case.body.replace(b'"data": {', b'"data": {' + deep, 1)
    else:
        case.body = b"{" + deep + case.body[1:]


def _wrong_content_type(fuzzer: Fuzzer, case: Case) -> None:
    choices = [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/xml",
    ]
    if case.mode == "submit":
        choices.append("")  # REST needs a Content-Type
    content_type = fuzzer.random.choice(choices)
    case.set_header("Content-Type", content_type or None)
    if case.mode == "structured":
        case.set_header("ce-specversion", "1.0")  # still a CloudEvent (binary mode now), of non-JSON data


def _header_twice(fuzzer: Fuzzer, case: Case) -> None:
    if case.mode == "submit":
        case.headers += [("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    else:
        name = fuzzer.random.choice(["ce-id", "ce-type", "ce-specversion"])
        case.headers.append((name, str(case.header(name))))


def _header_not_utf8(fuzzer: Fuzzer, case: Case) -> None:
    bad = fuzzer.random.choice([b"\xff", b"caf\xe9", b"\xc3(", b"\xed\xa0\x80"])
    if case.mode == "submit":
        case.set_header("Idempotency-Key", b"key-" + bad)
    elif case.mode == "binary":
        case.set_header(fuzzer.random.choice(["ce-id", "ce-source"]), b"id-" + bad)
    else:
        case.set_header("Content-Type", b"application/json; x=" + bad)


# Applied to the serialized body, after every other mutation.
def _truncate(fuzzer: Fuzzer, case: Case) -> None:
    case.body = case.body[: fuzzer.random.randrange(1, max(2, len(case.body) - 1))]


def _not_utf8(fuzzer: Fuzzer, case: Case) -> None:
    position = fuzzer.random.randrange(len(case.body))
    case.body = (
        case.body[:position]
        + fuzzer.random.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe9"])
        + case.body[position:]
    )


def _over_the_limit(fuzzer: Fuzzer, case: Case) -> None:
    case.body = case.body + b" " * (fuzzer.body_limit + 1 - len(case.body) + fuzzer.random.randint(0, 1000))


def _json_ambiguity(fuzzer: Fuzzer, case: Case) -> None:
    r = fuzzer.random
    kind = r.choice(["duplicate", "surrogate", "infinite", "nan"])
    if kind == "duplicate":
        first_key = case.body[1 : case.body.index(b":") + 1]
        case.body = b"{" + first_key + b"0," + case.body[1:]
    elif kind == "surrogate":
        case.body = (
            case.body.replace(b'"message":', b'"message":"\\udc80",\n"x":', 1)
            if b'"message":' in case.body
            else b'{"\\ud800":1}'
        )
    elif kind == "infinite":
        case.body = b'{"a":1e999,' + case.body[1:]
    else:
        case.body = b'{"a":NaN,' + case.body[1:]


_INVALIDATORS: dict[str, Callable[[Case], bool]] = {
    "drop_required": lambda case: _is_submission(case),
    "wrong_type": lambda case: _is_submission(case),
    "unknown_argument": lambda case: _is_submission(case),
    "message_too_long": lambda case: _is_submission(case),
    "no_such_definition": lambda case: _is_submission(case),
    "arguments_for_another_definition": lambda case: _is_submission(case),
    "unknown_field": lambda case: case.mode in ("submit", "submitjob"),
    "deep_nesting": lambda case: _is_submission(case),
    "wrong_content_type": lambda case: _is_submission(case),
    "header_twice": lambda case: case.mode in ("submit", "binary"),
    "header_not_utf8": lambda case: case.mode in ("submit", "binary", "structured"),
    "truncate": lambda case: _is_submission(case),
    "not_utf8": lambda case: _is_submission(case),
    "over_the_limit": lambda case: _is_submission(case),
    "json_ambiguity": lambda case: _is_submission(case),
}
_INVALIDATOR_ACTIONS: dict[str, Callable[[Fuzzer, Case], None]] = {
    "drop_required": _drop_required,
    "wrong_type": _wrong_type,
    "unknown_argument": _unknown_argument,
    "message_too_long": _message_too_long,
    "no_such_definition": _no_such_definition,
    "arguments_for_another_definition": _arguments_for_another_definition,
    "unknown_field": _unknown_field,
    "deep_nesting": lambda fuzzer, case: None,
    "wrong_content_type": _wrong_content_type,
    "header_twice": _header_twice,
    "header_not_utf8": _header_not_utf8,
    "truncate": lambda fuzzer, case: None,
    "not_utf8": lambda fuzzer, case: None,
    "over_the_limit": lambda fuzzer, case: None,
    "json_ambiguity": lambda fuzzer, case: None,
}
_BODY_INVALIDATORS: dict[str, Callable[[Fuzzer, Case], None]] = {
    "truncate": _truncate,
    "not_utf8": _not_utf8,
    "over_the_limit": _over_the_limit,
    "json_ambiguity": _json_ambiguity,
    "deep_nesting": _deep_nesting,
}
#: Invalidators that byte flips in the body cannot undo (they live in headers, or in the
#: definition chosen: no single flip turns "forever" or "capped" into "echo").
_FLIP_PROOF = frozenset(
    {
        "arguments_for_another_definition",
        "wrong_content_type",
        "header_twice",
        "header_not_utf8",
        "message_too_long",
    }
)
