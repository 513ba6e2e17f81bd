"""Nothing secret reaches the function's log: no token, no signature, no secret key, no Authorization value.

Two functions run with caller authentication on (``JOBFN_AUTH=tokenreview``), AWS SigV4
credentials configured and the most verbose logging (``JOBFN_LOG_LEVEL=DEBUG``): one
against the shared cluster, one whose API server cannot be reached (so token reviews
and submissions fail with 503, the error path that logs the most). Each gets the same
battery: valid and invalid ServiceAccount tokens (and a forged one: a real token with
its signature changed) on every door; requests that authenticate and then break
parsing (JSON nested 100,000 deep, bytes that are not UTF-8, truncated JSON, a
malformed CloudEvent); 401 and 403 paths; requests signed with the right key, the
wrong secret, an unknown key, a body changed after signing, two signatures, a session
token, and none. Then the whole log (stdout and stderr) must hold none of the tokens
(nor any 16 characters in a row of one), no signature, no secret key and no
Authorization header value, and no answer may echo a token either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest
from kubernetes import client as k8s

from tests.e2e.conftest import write_definitions
from tests.e2e.test_auth import service_account_token
from tests.e2e.test_unavailable import unreachable_kubeconfig
from tests.helpers import FunctionServer, create_namespace, start_function
from tests.reliability.rawhttp import Answer, Header, RawConnection, request_bytes

ACCESS_KEY = "AKIDJOBFNSECRETSTEST"
SECRET_KEY = "jobfn/Secret+Key=Never-Logged-0123456789"
SESSION_TOKEN = "FwoGZXIvYXdzEjobfnSessionTokenNeverLogged0123456789abcdef"
WINDOW = 16  # no run of this many characters of a token may appear in the log
ECHO = json.dumps({"definition": "echo", "arguments": {"message": "secrets"}}).encode()


def secured_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "JOBFN_AUTH": "tokenreview",
        "JOBFN_AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "JOBFN_AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "JOBFN_LOG_LEVEL": "DEBUG",
        **(extra or {}),
    }


@pytest.fixture(scope="module")
def namespace(api_client: k8s.ApiClient) -> Iterator[str]:
    name = create_namespace(api_client, "secrets-in-logs")
    yield name
    k8s.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def tokens(api_client: k8s.ApiClient, namespace: str) -> dict[str, str]:
    """Real tokens of two ServiceAccounts ("restricted" allows only "submitter"), and invalid ones."""
    core = k8s.CoreV1Api(api_client)
    submitter = service_account_token(core, namespace, "submitter")
    other = service_account_token(core, namespace, "other")
    head, _, signature = submitter.rpartition(".")
    return {
        "submitter": submitter,
        "other": other,
        "forged": f"{head}.{signature[::-1]}",  # a real token's claims, signature changed
        "made-up": "jobfn-made-up-token-0123456789abcdefghijklmnopqrstuvwxyz",
        "truncated": submitter[: len(submitter) // 2],
    }


@pytest.fixture(scope="module")
def servers(
    kubeconfig: Path, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FunctionServer]]:
    directory = tmp_path_factory.mktemp("secrets")
    definitions = write_definitions(directory, namespace)
    started = {"served": start_function(namespace, definitions, directory / "served.log", secured_env())}
    try:
        cut_off = secured_env(
            {
                "KUBECONFIG": str(unreachable_kubeconfig(directory / "kubeconfig")),
                "JOBFN_API_TIMEOUT_SECONDS": "2",
            }
        )
        started["cut-off"] = start_function(
            namespace, definitions, directory / "cut-off.log", cut_off, ready_path="/healthz"
        )
        yield started
    finally:
        for server in started.values():
            server.stop()


@dataclass
class Secrets:
    """Every secret sent, and every answer received."""

    values: set[str] = field(default_factory=set)
    answers: list[tuple[str, Answer]] = field(default_factory=list)


def send(connection: RawConnection, secrets: Secrets, what: str, data: bytes, method: str = "POST") -> Answer:
    answer = connection.send(data, method)
    secrets.answers.append((what, answer))
    return answer


def bearer_requests(tokens: dict[str, str]) -> list[tuple[str, bytes, set[int]]]:
    """(what, raw request, acceptable statuses) for the REST and CloudEvents doors."""
    json_type: Header = ("Content-Type", "application/json")

    def auth(token: str) -> Header:
        return ("Authorization", f"Bearer {token}")

    def event(token: str, event_id: str, body: bytes = b'{"message": "secrets"}') -> bytes:
        headers: list[Header] = [
            ("ce-specversion", "1.0"), ("ce-id", event_id), ("ce-source", "/secrets"),
            ("ce-type", "dev.jobfn.test.echo"), json_type, auth(token),
        ]  # fmt: skip
        return request_bytes("POST", "/", headers, body)

    valid, other = tokens["submitter"], tokens["other"]
    battery = [
        ("list with a valid token", request_bytes("GET", "/jobs", [auth(valid)]), {200, 503}),
        (
            "submit with a valid token",
            request_bytes("POST", "/jobs", [json_type, auth(valid)], ECHO),
            {201, 503},
        ),
        (
            "restricted definition, other subject",
            request_bytes("POST", "/jobs", [json_type, auth(other)], b'{"definition": "restricted"}'),
            {403, 503},
        ),
        ("event with a valid token", event(valid, "secrets-1"), {201, 503}),
        ("token in the query", request_bytes("GET", f"/jobs?access_token={valid}"), {401}),
        ("basic credentials", request_bytes("GET", "/jobs", [("Authorization", f"Basic {valid}")]), {401}),
        ("two tokens", request_bytes("GET", "/jobs", [auth(valid), auth(other)]), {401}),
        ("token and junk", request_bytes("GET", "/jobs", [("Authorization", f"Bearer {valid} junk")]), {401}),
    ]
    for name in ("forged", "made-up", "truncated"):
        battery += [
            (f"list with a {name} token", request_bytes("GET", "/jobs", [auth(tokens[name])]), {401, 503}),
            (f"event with a {name} token", event(tokens[name], f"secrets-{name}"), {401, 503}),
        ]
    # Authenticated, then the body breaks parsing: the paths that log errors.
    for what, body in [
        ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000),
        ("not UTF-8", b'{"definition": "echo", "arguments": {"message": "\xff\xfe"}}'),
        ("truncated JSON", ECHO[:-5]),
    ]:
        battery.append(
            (
                f"valid token, body {what}",
                request_bytes("POST", "/jobs", [json_type, auth(valid)], body),
                {400, 503},
            )
        )
        battery.append((f"valid token, event {what}", event(valid, f"secrets-{what}", body), {400, 503}))
    battery.append(
        (
            "invalid token, body nested deep",
            request_bytes("POST", "/jobs", [json_type, auth(tokens["made-up"])], b"[" * 100_000),
            {401, 503},
        )
    )
    return battery


def signed(
    path: str, body: bytes, secret: str = SECRET_KEY, key: str = ACCESS_KEY, token: str | None = None
) -> AWSRequest:
    request = AWSRequest(
        method="POST", url=f"http://function{path}", data=body, headers={"Content-Type": "application/json"}
    )
    credentials = botocore.credentials.Credentials(key, secret, token)
    botocore.auth.SigV4Auth(credentials, "batch", "us-east-1").add_auth(request)
    return request


def raw(request: AWSRequest, body: bytes | None = None, extra: tuple[Header, ...] = ()) -> bytes:
    headers: list[Header] = [
        (name, value) for name, value in request.headers.items() if name.lower() != "host"
    ]
    return request_bytes(
        "POST",
        request.url.removeprefix("http://function"),
        [*headers, *extra],
        request.body if body is None else body,
    )


def aws_requests(tokens: dict[str, str], secrets: Secrets) -> list[tuple[str, bytes, set[int]]]:
    """(what, raw request, acceptable statuses) for the AWS Batch door; their secrets join ``secrets``."""
    submit = json.dumps(
        {"jobName": "secrets", "jobQueue": "main", "jobDefinition": "echo", "parameters": {"message": "x"}}
    ).encode()
    good = signed("/v1/submitjob", submit)
    queues = signed("/v1/describejobqueues", b"{}")
    wrong_secret = signed("/v1/describejobqueues", b"{}", secret="not-the-secret-key")
    unknown_key = signed("/v1/describejobqueues", b"{}", key="AKIDSOMEONEELSE")
    with_session = signed("/v1/describejobqueues", b"{}", token=SESSION_TOKEN)
    deep = b'{"jobs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    deep_signed = signed("/v1/describejobs", deep)
    not_utf8 = signed("/v1/describejobs", b'{"jobs": ["\xff"]}')
    for request in (good, queues, wrong_secret, unknown_key, with_session, deep_signed, not_utf8):
        secrets.values.add(request.headers["Authorization"])
        secrets.values.add(request.headers["Authorization"].rpartition("Signature=")[2])
    return [
        ("signed submit", raw(good), {200, 503}),
        ("signed describe", raw(queues), {200}),
        ("wrong secret", raw(wrong_secret), {403}),
        ("unknown key", raw(unknown_key), {403}),
        ("session token", raw(with_session), {200, 403}),
        ("body changed after signing", raw(queues, b'{"x": 1}'), {403}),
        (
            "two signatures",
            raw(queues, extra=(("Authorization", str(wrong_secret.headers["Authorization"])),)),
            {403},
        ),
        ("signed, nested 100,000 deep", raw(deep_signed), {400}),
        ("signed, not UTF-8", raw(not_utf8), {400}),
        (
            "unsigned",
            request_bytes("POST", "/v1/describejobqueues", [("Content-Type", "application/json")], b"{}"),
            {403},
        ),
        (
            "a bearer token instead",
            request_bytes(
                "POST", "/v1/describejobqueues", [("Authorization", f"Bearer {tokens['submitter']}")], b"{}"
            ),
            {403},
        ),
        (
            "secret key as the signature",
            request_bytes(
                "POST",
                "/v1/describejobqueues",
                [
                    (
                        "Authorization",
                        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/batch/aws4_request, SignedHeaders=host, Signature={SECRET_KEY}",
                    )
                ],
                b"{}",
            ),
            {403},
        ),
    ]


@pytest.mark.parametrize("which", ["served", "cut-off"])
def test_no_secret_reaches_the_log(
    servers: dict[str, FunctionServer], tokens: dict[str, str], which: str
) -> None:
    server = servers[which]
    secrets = Secrets(values={*tokens.values(), SECRET_KEY, SESSION_TOKEN})
    secrets.values |= {f"Bearer {token}" for token in tokens.values()}
    battery = bearer_requests(tokens) + aws_requests(tokens, secrets)
    unexpected = []
    with RawConnection(server.url, timeout=60) as connection:
        for what, data, acceptable in battery:
            answer = send(connection, secrets, what, data, data.split(b" ", 1)[0].decode())
            if answer.status not in acceptable:
                unexpected.append(f"{what}: {answer.status} {answer.text[:200]}")
    assert not unexpected, unexpected
    if which == "cut-off":  # the error path that logs was taken
        assert any(answer.status == 503 for _, answer in secrets.answers)
    statuses = {what: answer.status for what, answer in secrets.answers}

    log = server.log()
    assert "Kubernetes API" in log or which == "served"
    leaks = [f"{value[:8]}..." for value in secrets.values if value in log]
    for token in tokens.values():
        windows = {token[i : i + WINDOW] for i in range(len(token) - WINDOW + 1)}
        if any(window in log for window in windows):
            leaks.append(f"{WINDOW} characters in a row of a token ({token[:8]}...)")
    assert not leaks, f"{leaks} in the log of the {which} function; answers: {statuses}"
    echoed = [what for what, answer in secrets.answers if any(t in answer.text for t in tokens.values())]
    assert not echoed, echoed


def test_authorization_sent_twice_is_refused_saying_so(
    servers: dict[str, FunctionServer], tokens: dict[str, str]
) -> None:
    # gunicorn joins a repeated header with a comma; the function must not pick one of the two.
    server = servers["served"]
    two_tokens = [
        ("Authorization", f"Bearer {tokens['submitter']}"),
        ("Authorization", f"Bearer {tokens['other']}"),
    ]
    with RawConnection(server.url) as connection:
        answer = connection.send(request_bytes("GET", "/jobs", two_tokens), "GET")
        assert answer.status == 401, answer.text
        assert "holds two tokens (was it sent twice?)" in answer.json()["error"]["message"]
        queues = signed("/v1/describejobqueues", b"{}")
        again: Header = ("Authorization", str(queues.headers["Authorization"]))
        answer = connection.send(raw(queues, extra=(again,)))
        assert answer.status == 403, answer.text
        assert answer.headers["x-amzn-errortype"] == "IncompleteSignatureException"
        assert "holds two signatures (was it sent twice?)" in answer.json()["message"]
