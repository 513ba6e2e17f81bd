"""The kubernetes client's models at the edge of the k8s-jobs layer, and the client it uses.

jobfn's core works on Jobs as the API server's JSON; k8s-jobs' API hands out and takes
``kubernetes.client.V1Job`` objects. The conversion both ways happens here and only
here, with the client's own (de)serializer, so no other part of jobfn sees a model.
The client is imported on first use: importing it costs a noticeable fraction of a second.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Job

Manifest = dict[str, Any]


def library_api_client() -> ApiClient:
    """The API client a k8s-jobs program expects its library to use.

    k8s-jobs used the kubernetes client's default configuration: whatever the program
    loaded with ``kubernetes.config.load_kube_config`` or ``load_incluster_config``.
    A program that loaded none gets jobfn's own resolution (in-cluster, ``$KUBECONFIG``,
    ``~/.kube/config``) rather than a client pointed at localhost.
    """
    from kubernetes import client

    # set_default (called by every kubernetes.config loader) is the only writer of _default.
    if getattr(client.Configuration, "_default", None) is not None:
        return client.ApiClient()
    import os

    from kubernetes import config

    from .._errors import ConfigurationError

    configuration = client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as error:
        raise ConfigurationError(f"no Kubernetes configuration (in-cluster or KUBECONFIG): {error}") from None
    configuration.retries = False  # jobfn answers 503 and the caller retries; never hide it here
    return client.ApiClient(configuration)


@functools.cache
def _converter() -> ApiClient:
    # (De)serializing needs no server: a client on an empty configuration does it.
    from kubernetes import client

    return client.ApiClient(client.Configuration())


def to_v1_job(manifest: Mapping[str, Any]) -> V1Job:
    """A Job as the API returns it (JSON) → ``V1Job``, exactly as the client would build it."""
    job: V1Job = _converter().deserialize(json.dumps(manifest), "V1Job", "application/json")
    return job


def to_manifest(job: V1Job | Mapping[str, Any]) -> Manifest:
    """A ``V1Job`` (or a Job dict, as k8s-jobs also accepted) → the API's JSON shape."""
    if isinstance(job, Mapping):
        return json.loads(json.dumps(job, default=str))  # type: ignore[no-any-return]  # a deep copy
    manifest: Manifest = _converter().sanitize_for_serialization(job)  # type: ignore[no-untyped-call]
    return manifest
