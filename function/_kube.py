"""The Kubernetes boundary: the one module that speaks HTTP to the API server.

Configuration is resolved once (``_kube_config``: in-cluster, else ``$KUBECONFIG`` or
~/.kube/config); every request then goes out through ``KubeApi.request`` on a kept-alive
connection, answers are read as plain JSON dicts (the pure modules work on the API's own
shape), and every failure becomes one of ``_errors``' classes here, carrying the API
server's ``Status``. Hooks (``KubeApi.on_request``) see each request, so the reaper
counts them without a subclass.

The HTTP client is libcurl (pycurl): per create it costs 0.43-0.55 ms of CPU where
http.client costs 0.72-0.79 and urllib3 (on top of http.client) 0.99-1.13 (bench/ and
the commit that chose it), and it imports in the time ``ssl`` alone takes. The official
``kubernetes`` package is not imported on this path: importing it costs more than a
whole functions-framework start. It still serves where it must: a kubeconfig whose user
authenticates by an exec plugin or an auth provider is loaded by its loader, and an
``ApiClient`` handed to ``KubeApi`` (k8s-jobs' drop-in API, the tests) is read for its
server and credentials.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import pycurl

from ._errors import (
    AlreadyExists,
    ApiCause,
    ApiStatus,
    ConfigurationError,
    Conflict,
    InvalidRequest,
    JobfnError,
    JobNotFound,
    KubernetesError,
    NotFound,
    StaleWrite,
    TooManyRequests,
    Unavailable,
)
from ._kube_config import ClusterAccess, Unsupported, from_environment, kubeconfig_path

Json = dict[str, Any]
RequestHook = Callable[[str, str], None]
"""Called with (method, path) before each request is sent."""


def access_from_environment() -> ClusterAccess:
    """The API server and credentials: in-cluster when running in a pod, else the kubeconfig.

    ``ConfigurationError`` when none of them holds a usable configuration.
    """
    try:
        return from_environment()
    except Unsupported:
        return _access_through_official_loader()
    except OSError as error:
        raise ConfigurationError(f"no Kubernetes configuration (in-cluster or KUBECONFIG): {error}") from None


def _access_through_official_loader() -> ClusterAccess:
    """A kubeconfig only the official client understands (exec plugins, auth providers, merges)."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    configuration = k8s.Configuration()
    several = os.pathsep in os.environ.get("KUBECONFIG", "")
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=None if several else str(kubeconfig_path(os.environ)),
            client_configuration=configuration,
        )
    except (k8s_config.ConfigException, OSError) as error:
        raise ConfigurationError(f"no Kubernetes configuration (in-cluster or KUBECONFIG): {error}") from None
    return access_of_configuration(configuration)


def access_of_configuration(configuration: Any) -> ClusterAccess:
    """The server and credentials of an official client ``Configuration``."""

    def authorization() -> str | None:
        if configuration.refresh_api_key_hook is not None:
            configuration.refresh_api_key_hook(configuration)
        value = configuration.get_api_key_with_prefix("authorization")
        if value:
            return str(value)
        if configuration.username or configuration.password:
            return str(configuration.get_basic_auth_token())
        return None

    return ClusterAccess(
        server=str(configuration.host).rstrip("/"),
        ca_file=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        tls_server_name=getattr(configuration, "tls_server_name", None),
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        authorization_source=authorization,
    )


class _Connections:
    """libcurl handles, one per request in flight, each keeping its connection alive.

    A handle serves one request at a time; ``size`` of them are kept between requests
    (past that a handle, and its connection, is closed after its request). Never retried:
    jobfn answers 503 and its caller retries, so a retry here would hide an outage.
    """

    def __init__(self, access: ClusterAccess, size: int, timeout: float) -> None:
        self.size = size
        self._idle: list[pycurl.Curl] = []
        self._lock = threading.Lock()
        self._options = self._fixed_options(access, timeout)

    @staticmethod
    def _fixed_options(access: ClusterAccess, timeout: float) -> list[tuple[int, Any]]:
        options: list[tuple[int, Any]] = [
            (pycurl.NOSIGNAL, 1),  # threads: no SIGALRM for timeouts
            (pycurl.TIMEOUT_MS, int(timeout * 1000)),
            (pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1),
            (pycurl.TCP_NODELAY, 1),
            (pycurl.PROXY, ""),  # the API server is reached directly, whatever the environment says
        ]
        if access.ca_file:
            options.append((pycurl.CAINFO, access.ca_file))
        elif access.ca_data:
            options.append((pycurl.CAINFO_BLOB, access.ca_data.encode()))
        if access.insecure:
            options += [(pycurl.SSL_VERIFYPEER, 0), (pycurl.SSL_VERIFYHOST, 0)]
        if access.cert_file:
            options.append((pycurl.SSLCERT, access.cert_file))
        if access.key_file:
            options.append((pycurl.SSLKEY, access.key_file))
        if access.tls_server_name:
            # Verify the certificate for that name while connecting to the server's address.
            parts = urlsplit(access.server)
            port = parts.port or 443
            options.append((pycurl.CONNECT_TO, [f"{access.tls_server_name}:{port}:{parts.hostname}:{port}"]))
        return options

    @contextmanager
    def handle(self) -> Iterator[pycurl.Curl]:
        with self._lock:
            curl = self._idle.pop() if self._idle else None
        if curl is None:
            curl = pycurl.Curl()
        try:
            yield curl
        finally:
            with self._lock:
                kept = len(self._idle) < self.size
                if kept:
                    self._idle.append(curl)
            if not kept:
                curl.close()

    def prepare(self, curl: pycurl.Curl) -> None:
        curl.reset()  # keeps the handle's connection; forgets the last request's options
        for option, value in self._options:
            curl.setopt(option, value)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for curl in idle:
            curl.close()


class KubeApi:
    """Requests to one API server, answered as JSON, failures translated once.

    Each request is one libcurl transfer on a kept-alive connection: no model classes,
    no argument validation (the API server validates every body either way).
    """

    def __init__(self, access: ClusterAccess | Any, timeout: float = 10.0, pool_size: int = 32) -> None:
        if not isinstance(access, ClusterAccess):  # an official ApiClient (k8s-jobs' API, tests)
            access = access_of_configuration(access.configuration)
        self.access = access
        self.timeout = timeout
        self._base = access.server
        if access.tls_server_name:
            parts = urlsplit(access.server)
            self._base = access.server.replace(parts.hostname or "", access.tls_server_name, 1)
        self._connections = _Connections(access, pool_size, timeout)
        self.on_request: list[RequestHook] = []

    @classmethod
    def from_environment(cls, pool_size: int = 32, timeout: float = 10.0) -> KubeApi:
        return cls(access_from_environment(), timeout, pool_size)

    def close(self) -> None:
        self._connections.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        doing: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        job_name: str | None = None,
    ) -> Json:
        """One request; its JSON answer. ``doing`` names it in error messages."""
        data = self.request_bytes(
            method, path, doing=doing, query=query, body=body, content_type=content_type, job_name=job_name
        )
        answer: Json = json.loads(data)
        return answer

    def request_bytes(
        self,
        method: str,
        path: str,
        *,
        doing: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        job_name: str | None = None,
    ) -> bytes:
        """One request; its raw answer (pod logs are text)."""
        for hook in self.on_request:
            hook(method, path)
        url = self._base + path + ("?" + urlencode(query) if query else "")
        headers = [f"Accept: {accept}", "Expect:"]  # no 100-continue round trip before a body
        answer, answer_headers = io.BytesIO(), io.BytesIO()
        with self._connections.handle() as curl:
            try:
                self._connections.prepare(curl)
                curl.setopt(pycurl.URL, url)
                if body is not None:
                    headers.append(f"Content-Type: {content_type}")
                    curl.setopt(pycurl.POSTFIELDS, json.dumps(body, separators=(",", ":")).encode())
                if method != ("POST" if body is not None else "GET"):
                    curl.setopt(pycurl.CUSTOMREQUEST, method)
                authorization = self.access.authorization()
                if authorization:
                    headers.append(f"Authorization: {authorization}")
                curl.setopt(pycurl.HTTPHEADER, headers)
                curl.setopt(pycurl.WRITEDATA, answer)
                curl.setopt(pycurl.WRITEHEADER, answer_headers)
                curl.perform()
                status = int(curl.getinfo(pycurl.RESPONSE_CODE))
            except (pycurl.error, OSError) as error:
                message = error.args[-1] if isinstance(error, pycurl.error) else str(error)
                raise Unavailable(f"Kubernetes API cannot be reached to {doing}: {message}") from error
        data = answer.getvalue()
        if not 200 <= status <= 299:
            headers_seen = _headers(answer_headers.getvalue())
            raise _translated(status, headers_seen.get("reason"), data, headers_seen, doing, job_name)
        return data


def _headers(raw: bytes) -> dict[str, str]:
    """The last response's headers (lower-cased names), and its status line's reason as ``reason``."""
    headers: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        if line.startswith("HTTP/"):
            headers = {"reason": line.split(" ", 2)[2] if line.count(" ") >= 2 else ""}  # a new response
        elif ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return headers


def api_status(code: int, reason: str | None, data: bytes) -> ApiStatus:
    """The ``Status`` the API server sent with a refusal (or what can be told without one)."""
    try:
        body = json.loads(data or b"")
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return ApiStatus(code, "", str(reason or ""))
    details = body.get("details") if isinstance(body.get("details"), Mapping) else {}
    causes = tuple(
        ApiCause(
            str(cause.get("field") or ""), str(cause.get("reason") or ""), str(cause.get("message") or "")
        )
        for cause in (details or {}).get("causes") or ()
        if isinstance(cause, Mapping)
    )
    return ApiStatus(
        int(body.get("code") or code),
        str(body.get("reason") or ""),
        str(body.get("message") or reason or ""),
        causes,
    )


def _translated(
    code: int, reason: str | None, data: bytes, headers: Mapping[str, str], doing: str, job_name: str | None
) -> JobfnError:
    status = api_status(code, reason, data)
    message = status.message
    translated: JobfnError
    if code == 404:
        translated = (
            JobNotFound(f"job {job_name!r} not found")
            if job_name is not None
            else NotFound(f"not found while trying to {doing}: {message}")
        )
    elif code == 409 and status.reason == "AlreadyExists":
        translated = AlreadyExists(f"already exists: cannot {doing}: {message}")
    elif code == 409:
        translated = (StaleWrite if status.reason == "Conflict" else Conflict)(
            f"conflict while trying to {doing}: {message}"
        )
    elif code in (400, 422):
        problems = [
            f"{cause.field}: {cause.message}" if cause.field else cause.message for cause in status.causes
        ]
        translated = InvalidRequest(f"Kubernetes refused to {doing}: {message}", problems)
    elif code == 410:
        translated = InvalidRequest(f"the page token has expired; list again from the start ({doing})")
    elif code == 429:
        retry = headers.get("retry-after", "1")
        translated = TooManyRequests(
            f"Kubernetes API is throttling requests ({doing})", int(retry) if str(retry).isdigit() else 1
        )
    elif code == 0 or code >= 500:
        translated = Unavailable(f"Kubernetes API failed to {doing}: {message}")
    else:
        translated = KubernetesError(f"Kubernetes API refused to {doing} ({code}): {message}")
    translated.api_status = status
    return translated
