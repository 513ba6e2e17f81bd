"""ConfigMap keys read through the boundary: where a definition's template may live."""

from __future__ import annotations

from ._errors import NotFound
from ._kube import KubeApi


class ConfigMapReader:
    """Reads one key of a ConfigMap (``template_config_map``); the namespace defaults to jobfn's."""

    def __init__(self, api: KubeApi, default_namespace: str) -> None:
        self._api = api
        self._default_namespace = default_namespace

    def __call__(self, namespace: str, name: str, key: str) -> str:
        path = f"/api/v1/namespaces/{namespace or self._default_namespace}/configmaps/{name}"
        body = self._api.request("GET", path, doing=f"read ConfigMap {name!r}")
        data = body.get("data") or {}
        if key not in data:
            raise NotFound(f"ConfigMap {name!r} has no key {key!r}")
        return str(data[key])
