"""The Kubernetes boundary: the one module that speaks HTTP to the API server.

Configuration is resolved once (in-cluster, else ``$KUBECONFIG`` or ~/.kube/config)
into the official client's ``ApiClient``; every request then goes out through
``KubeApi.request``, answers are read as plain JSON dicts (the pure modules work on
the API's own shape, and no per-call model round trip is paid), and every failure
becomes one of ``_errors``' classes here, carrying the API server's ``Status``.
Hooks (``KubeApi.on_request``) see each request, so the reaper counts them without
a subclass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

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

Json = dict[str, Any]
RequestHook = Callable[[str, str], None]
"""Called with (method, path) before each request is sent."""


def api_client_from_environment(pool_size: int = 32) -> k8s.ApiClient:
    """An API client: in-cluster when running in a pod, else ``$KUBECONFIG`` or ~/.kube/config.

    ``ConfigurationError`` when none of them holds a usable configuration.
    """
    configuration = k8s.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (k8s_config.ConfigException, OSError) as error:
        raise ConfigurationError(f"no Kubernetes configuration (in-cluster or KUBECONFIG): {error}") from None
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = False  # jobfn answers 503 and the caller retries; never hide it here
    return k8s.ApiClient(configuration)


class KubeApi:
    """Requests to one API server, answered as JSON, failures translated once.

    ``request`` goes out through ``ApiClient.param_serialize``/``call_api``: what a
    generated method sends, minus its pydantic validation of every argument and its
    dict → model → dict round trip of every body (about a quarter of a submission's
    CPU; see bench/). The kubeconfig's authentication still applies, and the API
    server validates every body either way.
    """

    def __init__(self, api_client: k8s.ApiClient, timeout: float = 10.0) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self.on_request: list[RequestHook] = []

    @classmethod
    def from_environment(cls, pool_size: int = 32, timeout: float = 10.0) -> KubeApi:
        return cls(api_client_from_environment(pool_size), timeout)

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
        try:
            method, url, headers, _, _ = self.api_client.param_serialize(
                method=method,
                resource_path=path,
                query_params=query,
                header_params={"Accept": accept, "Content-Type": content_type},
                auth_settings=["BearerToken"],
            )
            response: Any = self.api_client.call_api(
                method, url, header_params=headers, body=body, _request_timeout=self.timeout
            )
            response.read()
            if not 200 <= response.status <= 299:
                raise ApiException.from_response(http_resp=response, body=None, data=None)
        except ApiException as error:
            raise _translated(error, doing, job_name) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise Unavailable(f"Kubernetes API cannot be reached to {doing}: {error}") from error
        data: bytes = response.data
        return data


def api_status(error: ApiException) -> ApiStatus:
    """The ``Status`` the API server sent with a refusal (or what can be told without one)."""
    try:
        body = json.loads(error.body or "")
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return ApiStatus(error.status or 0, "", str(error.reason or ""))
    details = body.get("details") if isinstance(body.get("details"), Mapping) else {}
    causes = tuple(
        ApiCause(
            str(cause.get("field") or ""), str(cause.get("reason") or ""), str(cause.get("message") or "")
        )
        for cause in (details or {}).get("causes") or ()
        if isinstance(cause, Mapping)
    )
    return ApiStatus(
        int(body.get("code") or error.status or 0),
        str(body.get("reason") or ""),
        str(body.get("message") or error.reason or ""),
        causes,
    )


def _translated(error: ApiException, doing: str, job_name: str | None) -> JobfnError:
    status = api_status(error)
    code = error.status or 0
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
        retry = (error.headers or {}).get("Retry-After", "1")
        translated = TooManyRequests(
            f"Kubernetes API is throttling requests ({doing})", int(retry) if str(retry).isdigit() else 1
        )
    elif code == 0 or code >= 500:
        translated = Unavailable(f"Kubernetes API failed to {doing}: {message}")
    else:
        translated = KubernetesError(f"Kubernetes API refused to {doing} ({code}): {message}")
    translated.api_status = status
    return translated
