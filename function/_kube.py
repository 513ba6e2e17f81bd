"""The Kubernetes client boundary: the official client built, one request sent, failures translated.

Requests go out through ``ApiClient.param_serialize``/``call_api`` and answers are read
as plain JSON dicts: the pure modules (``status``, ``retention``, ``policy``) work on
the API's own shape, and skipping the client's model (de)serialisation keeps a
submission cheap. Every ``ApiException`` and connection failure becomes one of
``errors``' classes here, so callers see one hierarchy whatever went wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pydantic
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from ._errors import (
    Conflict,
    InvalidRequest,
    JobNotFound,
    KubernetesError,
    NotFound,
    TooManyRequests,
    Unavailable,
)


def api_client_from_environment(pool_size: int = 32) -> k8s.ApiClient:
    """An API client: in-cluster when running in a pod, else ``$KUBECONFIG`` or ~/.kube/config."""
    configuration = k8s.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = False  # jobfn answers 503 and the caller retries; never hide it here
    return k8s.ApiClient(configuration)


def _api_message(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "")
        return str(body.get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


@contextlib.contextmanager
def translate_errors(doing: str, job_name: str | None = None) -> Iterator[None]:
    """Turn a Kubernetes client failure while ``doing`` something into a jobfn error."""
    try:
        yield
    except ApiException as error:
        message = _api_message(error)
        status = error.status or 0
        if status == 404:
            if job_name is not None:
                raise JobNotFound(f"job {job_name!r} not found") from error
            raise NotFound(f"not found while trying to {doing}: {message}") from error
        if status == 409:
            raise Conflict(f"conflict while trying to {doing}: {message}") from error
        if status in (400, 422):
            raise InvalidRequest(f"Kubernetes refused to {doing}: {message}") from error
        if status == 410:
            raise InvalidRequest(
                f"the page token has expired; list again from the start ({doing})"
            ) from error
        if status == 429:
            retry = (error.headers or {}).get("Retry-After", "1")
            raise TooManyRequests(
                f"Kubernetes API is throttling requests ({doing})",
                int(retry) if str(retry).isdigit() else 1,
            ) from error
        if status == 0 or status >= 500:
            raise Unavailable(f"Kubernetes API failed to {doing}: {message}") from error
        raise KubernetesError(f"Kubernetes API refused to {doing} ({status}): {message}") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise Unavailable(f"Kubernetes API cannot be reached to {doing}: {error}") from error
    except pydantic.ValidationError as error:
        # The client checks a body against its model before sending it.
        problems = [
            f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False)
        ]
        raise InvalidRequest(
            f"cannot {doing}: the Job is not valid: {'; '.join(problems)}", problems
        ) from None


def send(
    api_client: k8s.ApiClient,
    method: str,
    path: str,
    *,
    query: list[tuple[str, Any]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
) -> Any:
    """One API request, answered with the raw response: what a generated method sends, minus its cost.

    The generated methods validate every argument with pydantic and turn a dict body
    into a model (``V1Job``) and back before sending it: about a quarter of a
    submission's CPU and most of a reaper run's (see bench/). Creating, listing,
    patching and deleting jobs go through here instead; the API server validates
    every body either way (422 as usual), and ``param_serialize`` still applies the
    kubeconfig's authentication. A non-2xx answer raises ``ApiException`` (translate
    it with ``translate_errors``).
    """
    method, url, headers, _, _ = api_client.param_serialize(
        method=method,
        resource_path=path,
        query_params=query,
        header_params={"Accept": "application/json", "Content-Type": content_type},
        auth_settings=["BearerToken"],
    )
    response: Any = api_client.call_api(
        method, url, header_params=headers, body=body, _request_timeout=timeout
    )
    response.read()
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    return response


def read_json(response: Any) -> Any:
    """The JSON body of a response ``send`` returned."""
    return json.loads(response.data)
