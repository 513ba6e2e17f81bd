"""Registered job definitions kept in the cluster: one ConfigMap per revision.

ConfigMaps rather than a CRD: installing a CRD needs cluster-admin and a schema to
migrate, while ConfigMaps in the jobs namespace need only a namespaced Role, survive
restarts and are seen by every replica at once. A revision's ConfigMap is named from
the definition and the revision number, so two replicas registering the same name at
once cannot both take one revision: the API server refuses the second create, and it
takes the next. Deregistering relabels a revision INACTIVE; it stays describable, as
in AWS Batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ._contract import MANAGED_BY_LABEL, JobSigner
from ._errors import AlreadyExists, Conflict, InvalidRequest, NotFound, StaleWrite
from ._kube import KubeApi
from ._registration import Registration
from ._registration_request import read_registration

NAME_LABEL = "jobfn.dev/registered-definition"
REVISION_LABEL = "jobfn.dev/revision"
STATUS_LABEL = "jobfn.dev/status"
REGISTERED_BY_ANNOTATION = "jobfn.dev/registered-by"
_DATA_KEY = "definition.json"
_REGISTER_ATTEMPTS = 5


class RegisteredDefinitions:
    """The registered definitions of one signature in one namespace."""

    def __init__(self, api: KubeApi, namespace: str, signer: JobSigner) -> None:
        self.api = api
        self.namespace = namespace
        self.signer = signer
        self._path = f"/api/v1/namespaces/{namespace}/configmaps"

    def revisions(self, name: str | None = None) -> list[Registration]:
        """Every revision of definition ``name`` (of every definition when None), oldest first."""
        selector = f"{MANAGED_BY_LABEL}={self.signer.signature},{NAME_LABEL}" + (f"={name}" if name else "")
        query: list[tuple[str, Any]] = [("labelSelector", selector)]
        found: list[Registration] = []
        while True:
            body = self.api.request("GET", self._path, query=query, doing="list registered job definitions")
            found.extend(_registration(item) for item in body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return sorted(found, key=lambda r: (r.name, r.revision))
            query = [query[0], ("continue", token)]

    def register(self, registration: Registration) -> Registration:
        """Store ``registration`` as the definition's next revision; the stored one."""
        for _ in range(_REGISTER_ATTEMPTS):
            revision = max((r.revision for r in self.revisions(registration.name)), default=0) + 1
            stored = replace(registration, revision=revision, active=True)
            try:
                self.api.request(
                    "POST", self._path, body=self._config_map(stored), doing="register a job definition"
                )
            except AlreadyExists:
                continue  # another replica took this revision a moment ago: take the next
            return stored
        raise Conflict(f"job definition {registration.name!r} is being registered concurrently; retry")

    def change_tags(
        self, name: str, revision: int, add: Mapping[str, str], remove: Iterable[str] = ()
    ) -> None:
        """Add (or replace) and remove the tags of one revision, written with its resourceVersion."""
        path = f"{self._path}/{config_map_name(name, revision)}"
        for _ in range(_REGISTER_ATTEMPTS):
            try:
                config_map = self.api.request("GET", path, doing=f"read job definition {name}:{revision}")
            except NotFound:
                raise InvalidRequest(f"job definition {name}:{revision} is not registered") from None
            request = json.loads((config_map.get("data") or {}).get(_DATA_KEY) or "{}")
            tags = {k: v for k, v in (request.get("tags") or {}).items() if k not in set(remove)} | dict(add)
            request["tags"] = tags
            patch = {
                "metadata": {"resourceVersion": config_map["metadata"]["resourceVersion"]},
                "data": {_DATA_KEY: json.dumps(request, sort_keys=True)},
            }
            try:
                self.api.request("PATCH", path, body=patch, content_type="application/merge-patch+json",
                                 doing=f"tag job definition {name}:{revision}")  # fmt: skip
            except StaleWrite:
                continue  # changed meanwhile: read it again
            return
        raise Conflict(f"job definition {name}:{revision} is being changed concurrently; retry")

    def deregister(self, name: str, revision: int) -> None:
        """Mark one revision INACTIVE (already INACTIVE: nothing changes)."""
        patch = {"metadata": {"labels": {STATUS_LABEL: "INACTIVE"}}}
        try:
            self.api.request(
                "PATCH",
                f"{self._path}/{config_map_name(name, revision)}",
                body=patch,
                content_type="application/merge-patch+json",
                doing=f"deregister job definition {name}:{revision}",
            )
        except NotFound:
            raise InvalidRequest(f"job definition {name}:{revision} is not registered") from None

    def _config_map(self, registration: Registration) -> dict[str, Any]:
        annotations = (
            {REGISTERED_BY_ANNOTATION: registration.registered_by} if registration.registered_by else {}
        )
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": config_map_name(registration.name, registration.revision),
                "labels": {
                    MANAGED_BY_LABEL: self.signer.signature,
                    NAME_LABEL: registration.name,
                    REVISION_LABEL: str(registration.revision),
                    STATUS_LABEL: "ACTIVE",
                },
                "annotations": annotations,
            },
            "data": {_DATA_KEY: json.dumps(registration.to_request(), sort_keys=True)},
        }


def config_map_name(name: str, revision: int) -> str:
    # Batch names keep their case and underscores; a ConfigMap's name cannot, so it is a digest.
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    return f"jobfn-jobdef-{digest}-{revision}"


def _registration(config_map: dict[str, Any]) -> Registration:
    metadata = config_map.get("metadata") or {}
    labels = metadata.get("labels") or {}
    request = json.loads((config_map.get("data") or {}).get(_DATA_KEY) or "{}")
    return replace(
        read_registration(request),
        revision=int(labels.get(REVISION_LABEL, "0")),
        active=labels.get(STATUS_LABEL) == "ACTIVE",
        registered_by=(metadata.get("annotations") or {}).get(REGISTERED_BY_ANNOTATION),
    )
