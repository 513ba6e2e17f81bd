"""Ten thousand fuzzed requests through every front door: no 5xx, no job from an invalid request, no escape.

The requests come from ``fuzzing.Fuzzer`` (seeded; the seed is printed on failure and
can be set with JOBFN_FUZZ_SEED): REST operations of the OpenAPI document, CloudEvents
in binary and structured mode, AWS Batch actions. They are sent over two keep-alive
connections to the real function on the shared cluster. Checked:

- no answer is 5xx, none shows a stack trace, and the function logs no traceback;
- every refusal is in its door's shape (AWS: ``__type`` and ``x-amzn-ErrorType``;
  otherwise ``{"error": {..., "request_id"}}``);
- a request invalid by construction is never answered 2xx;
- the Jobs in the namespace, counted by the API server before and after, are exactly
  those whose submission was answered 201/200 with their name;
- each created Job holds the value sent, verbatim, where the template puts it, and
  nothing else differs from a Job made from a plain value (no extra keys, no evaluated
  expression) — and so does each value of tests/data/hostile_values.json, through
  every door.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client as k8s

from tests.helpers import ROOT, FunctionServer
from tests.reliability.fuzzing import DOORS, Case, Fuzzer
from tests.reliability.rawhttp import Answer, RawConnection, list_job_names, request_bytes, serve_e2e_function

TOTAL_REQUESTS = 10_000
CONNECTIONS = 2
MAX_CREATED_JOBS = 120  # valid submissions cost an API server write each: the rest are invalid
MAY_CREATE_SHARE = 0.03
BODY_LIMIT = 64 * 1024
SEED = int(os.environ.get("JOBFN_FUZZ_SEED", "20261128"))
HOSTILE = json.loads((ROOT / "tests" / "data" / "hostile_values.json").read_text())


@pytest.fixture(scope="module")
def server(api_client: k8s.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    yield from serve_e2e_function(
        api_client, tmp_path_factory, "fuzz", {"JOBFN_MAX_BODY_BYTES": str(BODY_LIMIT), "THREADS": "4"}
    )


@dataclass
class Run:
    """What a fuzz run sent and got back."""

    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    by_gunicorn: Counter[int] = field(default_factory=Counter)
    created: dict[str, Case] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def histogram(self) -> str:
        per_door: dict[str, Counter[int]] = {}
        for (door, mode, status), count in self.statuses.items():
            per_door.setdefault(f"{door}/{mode}", Counter())[status] += count
        lines = [
            f"  {name}: {sum(counts.values())} requests, {dict(sorted(counts.items()))}"
            for name, counts in sorted(per_door.items())
        ]
        return "\n".join(lines)


def job_name_of(door: str, answer: Answer) -> str:
    body = answer.json()
    return str(body["jobId"] if door == "aws" else body["name"])


def check_answer(case: Case, answer: Answer, run: Run) -> bool:
    """Record ``answer`` and any way it breaks the rules of the module docstring; whether it made a job."""
    problems = []
    if answer.status >= 500:
        problems.append(f"answered {answer.status}")
    if "Traceback" in answer.text or 'File "/' in answer.text:
        problems.append("a stack trace in the answer")
    if case.invalid_because and 200 <= answer.status < 300:
        problems.append(f"invalid ({case.invalid_because}) but answered {answer.status}")
    if answer.status >= 400 and answer.from_function:
        problems += shape_problems(case, answer)
    created = None
    if answer.status in (200, 201) and case.may_create:
        created = job_name_of(case.door, answer)
    with run.lock:
        run.statuses[(case.door, case.mode, answer.status)] += 1
        if not answer.from_function:
            run.by_gunicorn[answer.status] += 1
        if created is not None:
            run.created[created] = case
        run.failures += [
            f"{case.describe()}: {problem}; answer {answer.text[:300]!r}" for problem in problems
        ]
    return created is not None


def shape_problems(case: Case, answer: Answer) -> list[str]:
    try:
        body = answer.json()
    except ValueError:
        return ["a refusal that is not JSON"]
    aws_path = case.path.startswith("/v1/") and case.header("ce-specversion") is None
    if "x-amzn-errortype" in answer.headers:
        if not aws_path:
            return ["an AWS-shaped answer outside /v1/"]
        if set(body) != {"__type", "message"} or body["__type"] != answer.headers["x-amzn-errortype"]:
            return ["not in the AWS error shape"]
        return [] if body["message"] else ["an empty message"]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or error.get("request_id") != answer.headers.get("x-request-id"):
        return ["not in the REST error shape with the request id"]
    if aws_path and case.mode not in ("binary", "structured"):
        return ["a REST-shaped answer on the AWS door"]
    return [] if error.get("message") else ["an empty message"]


def fuzz(server: FunctionServer, run: Run, first: int, count: int) -> None:
    """Send cases ``first`` to ``first + count - 1`` over one connection."""
    fuzzer = Fuzzer(SEED, BODY_LIMIT, HOSTILE["values"])
    budget = MAX_CREATED_JOBS // CONNECTIONS  # each connection's share, so the total is never passed
    with RawConnection(server.url, timeout=60) as connection:
        for index in range(first, first + count):
            case = fuzzer.next_case(index, MAY_CREATE_SHARE if budget > 0 else 0.0)
            budget -= check_answer(case, connection.send(case.to_bytes(), case.method), run)


# --- what a created job must hold -----------------------------------------------------------
def sent_values(case: Case) -> tuple[str, str | None]:
    """The message a submission sent, and its FUZZ environment override (None: none sent)."""
    document = json.loads(case.body)
    if case.mode == "submit":
        arguments = document.get("arguments", document)
        environment = document.get("overrides", {}).get("environment", {})
        return arguments["message"], environment.get("FUZZ")
    if case.mode == "binary":
        return document["message"], None
    if case.mode == "structured":
        return document["data"]["message"], None
    overrides = document.get("containerOverrides", {}).get("environment", [])
    return document["parameters"]["message"], next((e["value"] for e in overrides), None)


def container_of(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, containers
    return dict(containers[0])


def verbatim_problems(
    job: dict[str, Any], message: str, fuzz_env: str | None, plain: dict[str, Any]
) -> list[str]:
    """How ``job`` differs from ``plain`` (the same submission of a plain value) beyond holding ``message``."""
    problems = []
    container = container_of(job)
    if container.get("command") != ["echo", message]:
        problems.append(f"command {container.get('command')!r}, sent {message!r}")
    expected_env = [{"name": "FUZZ", "value": fuzz_env}] if fuzz_env is not None else None
    # Kubernetes leaves out an empty value ("value" is omitempty): an empty string is still what it holds.
    given = [{"value": "", **variable} for variable in container.get("env") or []]
    # The AWS Batch door adds Batch's own variables; they name the job, never hold a caller's value.
    batch = {v["name"]: v["value"] for v in given if v["name"].startswith("AWS_BATCH_")}
    env = [v for v in given if not v["name"].startswith("AWS_BATCH_")] or None
    if env != expected_env:
        problems.append(f"env {container.get('env')!r}, sent {fuzz_env!r}")
    if batch and batch.get("AWS_BATCH_JOB_ID") != job["metadata"]["name"]:
        problems.append(f"AWS_BATCH_JOB_ID {batch.get('AWS_BATCH_JOB_ID')!r} is not the job's name")
    reference = container_of(plain)
    for fields in (container, reference):
        fields.pop("command", None)
        fields.pop("env", None)
    if container != reference:
        problems.append(f"container {container!r} differs from a plain job's {reference!r}")
    if set(job["metadata"]["labels"]) != set(plain["metadata"]["labels"]):
        problems.append(
            f"labels {sorted(job['metadata']['labels'])} vs {sorted(plain['metadata']['labels'])}"
        )
    spec = {
        k: v for k, v in job["spec"].items() if k not in ("template", "selector", "activeDeadlineSeconds")
    }
    plain_spec = {
        k: v for k, v in plain["spec"].items() if k not in ("template", "selector", "activeDeadlineSeconds")
    }
    if spec != plain_spec:
        problems.append(f"spec {spec!r} differs from {plain_spec!r}")
    return problems


def read_jobs(api_client: k8s.ApiClient, namespace: str) -> dict[str, dict[str, Any]]:
    jobs = k8s.BatchV1Api(api_client).list_namespaced_job(namespace, _request_timeout=60)
    return {job.metadata.name: api_client.sanitize_for_serialization(job) for job in jobs.items}


def plain_submission(door: str, message: str, key: str, environment: str | None = None) -> tuple[str, bytes]:
    """(door mode, raw request) submitting ``message`` to the echo definition through ``door``."""
    json_type = ("Content-Type", "application/json")
    if door == "rest":
        document: dict[str, Any] = {"definition": "echo", "arguments": {"message": message}}
        if environment is not None:
            document["overrides"] = {"environment": {"FUZZ": environment}}
        headers = [json_type, ("Idempotency-Key", key)]
        return "submit", request_bytes("POST", "/jobs", headers, json.dumps(document).encode())
    if door == "binary":
        headers = [
            ("ce-specversion", "1.0"),
            ("ce-id", key),
            ("ce-source", "/hostile"),
            ("ce-type", "dev.jobfn.test.echo"),
            json_type,
        ]
        return "binary", request_bytes("POST", "/", headers, json.dumps({"message": message}).encode())
    if door == "structured":
        event = {
            "specversion": "1.0",
            "id": key,
            "source": "/hostile",
            "type": "dev.jobfn.test.echo",
            "data": {"message": message},
        }
        headers = [("Content-Type", "application/cloudevents+json")]
        return "structured", request_bytes("POST", "/", headers, json.dumps(event).encode())
    document = {
        "jobName": "hostile",
        "jobQueue": "main",
        "jobDefinition": "echo",
        "parameters": {"message": message},
    }
    if environment is not None:
        document["containerOverrides"] = {"environment": [{"name": "FUZZ", "value": environment}]}
    return "submitjob", request_bytes("POST", "/v1/submitjob", [json_type], json.dumps(document).encode())


# --- the tests ---------------------------------------------------------------------------------
def test_ten_thousand_fuzzed_requests(
    server: FunctionServer, api_client: k8s.ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    before = list_job_names(api_client, server.namespace)
    log_start = len(server.log())
    run = Run()
    started = time.monotonic()
    share = TOTAL_REQUESTS // CONNECTIONS
    threads = [
        threading.Thread(target=fuzz, args=(server, run, n * share, share), daemon=True)
        for n in range(CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    seconds = time.monotonic() - started
    sent = sum(run.statuses.values())
    summary = (
        f"fuzz seed {SEED} (replay: JOBFN_FUZZ_SEED={SEED}): {sent} requests in {seconds:.1f} s "
        f"({sent / seconds:.0f}/s), {len(run.created)} jobs created, "
        f"{sum(c for (_, _, s), c in run.statuses.items() if s >= 500)} answers 5xx, "
        f"answered by gunicorn before jobfn: {dict(run.by_gunicorn)}\n{run.histogram()}"
    )
    with capsys.disabled():
        print("\n" + summary)
    assert sent == TOTAL_REQUESTS, summary
    assert not run.failures, f"{summary}\n{len(run.failures)} failures, first ones:\n" + "\n".join(
        run.failures[:20]
    )
    assert "Traceback" not in server.log()[log_start:], summary

    # Exactly the jobs answered 201/200 exist: nothing from a refused request, nothing lost.
    jobs = read_jobs(api_client, server.namespace)
    with capsys.disabled():
        print(
            f"Jobs the API server holds: {len(before)} before, {len(jobs)} after; answered 201/200: {len(run.created)}"
        )
    assert set(jobs) - before == set(run.created), summary
    assert run.created, summary  # the run must have made some jobs to check
    problems = []
    for name, case in run.created.items():
        message, environment = sent_values(case)
        reference = plain_reference(api_client, server, case.mode)
        problems += [
            f"{name} ({case.describe()}): {p}"
            for p in verbatim_problems(jobs[name], message, environment, reference)
        ]
    assert not problems, "\n".join(problems[:20])


_REFERENCES: dict[tuple[str, str], dict[str, Any]] = {}
MODE_DOORS = {"submit": "rest", "binary": "binary", "structured": "structured", "submitjob": "aws"}


def plain_reference(api_client: k8s.ApiClient, server: FunctionServer, mode: str) -> dict[str, Any]:
    """A job made from the message "plain" through the door of ``mode`` (made once per server and mode)."""
    key = (server.namespace, mode)
    if key not in _REFERENCES:
        door = MODE_DOORS[mode]
        with RawConnection(server.url) as connection:
            answer = connection.send(plain_submission(door, "plain", f"plain-{mode}")[1])
        assert answer.status in (200, 201), answer.text
        _REFERENCES[key] = read_jobs(api_client, server.namespace)[job_name_of(door, answer)]
    return _REFERENCES[key]


@pytest.mark.parametrize("door", DOORS)
def test_hostile_values_are_refused_or_held_verbatim(
    server: FunctionServer, api_client: k8s.ApiClient, door: str
) -> None:
    values: list[str] = [*HOSTILE["values"], HOSTILE["too_long"]]
    with_environment = door in ("rest", "aws")
    answers: dict[str, str] = {}
    refused = []
    with RawConnection(server.url) as connection:
        for number, value in enumerate(values):
            mode, data = plain_submission(
                door, value, f"hostile-{door}-{number}", value if with_environment else None
            )
            answer = connection.send(data)
            assert answer.status < 500, (value, answer.text)
            if answer.status in (200, 201):
                answers[job_name_of(door, answer)] = value
            else:
                assert 400 <= answer.status < 500, (value, answer.text)
                refused.append(value)
    # What the definition's schema refuses (message maxLength 200) is refused; nothing else is.
    assert refused == [value for value in values if len(value) > 200]
    jobs = read_jobs(api_client, server.namespace)
    reference = plain_reference(api_client, server, mode)
    problems = []
    for name, value in answers.items():
        problems += [
            f"{value!r}: {p}"
            for p in verbatim_problems(jobs[name], value, value if with_environment else None, reference)
        ]
    assert not problems, "\n".join(problems)
