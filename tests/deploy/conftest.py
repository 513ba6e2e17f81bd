"""Fixtures for the tests of deploy/: its rendering, Knative's CRDs, an installation per module,
ServiceAccount tokens, and the function served with nothing but its own ServiceAccount's rights."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client

from tests.cluster import localcluster
from tests.deploy import knative_crds
from tests.deploy.manifests import (
    DEPLOY,
    PLAIN,
    Manifest,
    as_stream,
    function_account,
    is_knative,
    reaper_account,
    render,
    write_overlay,
)
from tests.helpers import (
    FunctionServer,
    Kubectl,
    create_namespace,
    kubectl_runner,
    wait_for,
    write_token_kubeconfig,
)
from tests.knative import install as knative_install

CRD_CACHE_KEY = "jobfn/knative-crd-modules"
CRD_DIGEST_ANNOTATION = "jobfn.test/crd-set-digest"


@pytest.fixture(scope="session")
def kubectl_binary() -> Path:
    """The kubectl built with the local cluster (its kustomize renders deploy/); no API server needed."""
    return localcluster.kubectl_path()


@pytest.fixture(scope="session")
def rendered(kubectl_binary: Path) -> list[Manifest]:
    """`kubectl kustomize deploy/`, as objects."""
    return render(kubectl_binary, DEPLOY)


def _knative_module_dirs(cache: pytest.Cache | None) -> dict[str, Path]:
    """Where the pinned Knative modules are, from pytest's cache when go.mod/go.sum are unchanged."""
    if cache is None:  # pytest -p no:cacheprovider
        return knative_crds.download_modules()
    key = knative_crds.module_key()
    cached = cache.get(CRD_CACHE_KEY, {})
    if cached.get("key") == key and all(Path(d).is_dir() for d in cached["dirs"].values()):
        return {module: Path(d) for module, d in cached["dirs"].items()}
    dirs = knative_crds.download_modules()
    cache.set(CRD_CACHE_KEY, {"key": key, "dirs": {module: str(d) for module, d in dirs.items()}})
    return dirs


@pytest.fixture(scope="session")
def knative_crds_installed(kubectl: Kubectl, request: pytest.FixtureRequest) -> list[str]:
    """Knative Serving's and Eventing's CRDs, applied to the cluster and established; their names.

    Each CRD is annotated with the digest of the whole set; when the cluster already has
    this exact set (a cluster kept between runs), nothing is applied again.
    """
    dirs = _knative_module_dirs(getattr(request.config, "cache", None))
    crds = list(knative_crds.custom_resource_definitions(knative_crds.crd_files(dirs)))
    names = sorted(crd["metadata"]["name"] for crd in crds)
    if _knative_runs_here(kubectl):
        wait_for(lambda: set(_established_crds(kubectl, None)) >= set(names), timeout=60)
        return names
    digest = knative_crds.digest(crds)
    if _established_crds(kubectl, digest) != names:
        for crd in crds:
            crd["metadata"].setdefault("annotations", {})[CRD_DIGEST_ANNOTATION] = digest
        # Server-side apply: the largest CRDs exceed the client-side last-applied annotation's limit.
        kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=jobfn-tests",
            "-f",
            "-",
            input=as_stream(crds),
        )
        wait_for(lambda: _established_crds(kubectl, digest) == names, timeout=60)
    return names


def _knative_runs_here(kubectl: Kubectl) -> bool:
    """Whether tests/knative installed Knative itself here (even partly): its webhooks then own
    the CRDs' conversion, which applying them again with strategy None would conflict with."""
    items = json.loads(kubectl("get", "crd", "-o", "json").stdout)["items"]
    return knative_install.recorded_digest() is not None or any(
        crd["metadata"]["name"].endswith("knative.dev")
        and (crd["spec"].get("conversion") or {}).get("strategy") == "Webhook"
        for crd in items
    )


def _established_crds(kubectl: Kubectl, digest: str | None) -> list[str]:
    """Names of the established CRDs that carry ``digest`` (None: whichever they carry)."""
    items = json.loads(kubectl("get", "crd", "-o", "json").stdout)["items"]
    return sorted(
        crd["metadata"]["name"]
        for crd in items
        if (digest is None or (crd["metadata"].get("annotations") or {}).get(CRD_DIGEST_ANNOTATION) == digest)
        and any(
            c["type"] == "Established" and c["status"] == "True"
            for c in (crd.get("status") or {}).get("conditions") or []
        )
    )


# --- an installation of deploy/ in a namespace of its own -----------------------------------
@dataclass(frozen=True)
class Installation:
    """deploy/ rendered for ``namespace``, its core objects applied for real."""

    namespace: str
    manifests: list[Manifest]
    overlay: Path

    @property
    def core(self) -> list[Manifest]:
        return [m for m in self.manifests if not is_knative(m)]

    @property
    def knative(self) -> list[Manifest]:
        return [m for m in self.manifests if is_knative(m)]

    @property
    def function_account(self) -> str:
        return function_account(self.manifests)

    @property
    def reaper_account(self) -> str:
        return reaper_account(self.manifests)


def install(kubectl: Kubectl, kubectl_binary: Path, namespace: str, directory: Path) -> Installation:
    """Render deploy/ for ``namespace`` (an existing namespace) and apply its core objects."""
    overlay = write_overlay(directory, namespace, suffix=f"-{namespace}")
    manifests = render(kubectl_binary, overlay)
    installation = Installation(namespace, manifests, overlay)
    kubectl("apply", "-f", "-", input=as_stream(installation.core))
    return installation


def install_plain(
    kubectl: Kubectl, kubectl_binary: Path, namespace: str, directory: Path, **overlay: Any
) -> Installation:
    """deploy/plain/ (everything but Knative) into ``namespace`` with ``kubectl apply -k``, as a
    user installs it; ``overlay`` as for ``write_overlay`` (reaper_schedule, definitions)."""
    kustomization = write_overlay(directory, namespace, suffix=f"-{namespace}", base=PLAIN, **overlay)
    kubectl("apply", "-k", str(kustomization))
    return Installation(namespace, render(kubectl_binary, kustomization), kustomization)


@pytest.fixture(scope="module")
def installed(
    api_client: client.ApiClient,
    kubectl: Kubectl,
    kubectl_binary: Path,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Installation]:
    """deploy/ installed in a namespace shared by the tests of one module."""
    name = create_namespace(api_client, "deploy-" + request.module.__name__.rsplit(".", 1)[-1])
    installation = install(kubectl, kubectl_binary, name, tmp_path_factory.mktemp("overlay"))
    yield installation
    uninstall_cluster_scoped(kubectl, installation)
    client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


def uninstall_cluster_scoped(kubectl: Kubectl, installation: Installation) -> None:
    """Cluster-scoped objects outlive their namespace: remove them with it."""
    cluster_scoped = [m for m in installation.manifests if m["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input=as_stream(cluster_scoped))


# --- identities ------------------------------------------------------------------------------
KubectlAs = Callable[..., "subprocess.CompletedProcess[str]"]


def service_account_token(
    api_client: client.ApiClient,
    namespace: str,
    account: str,
    audience: str | None = None,
    seconds: int = 600,
) -> str:
    """A token of ``account`` from the TokenRequest API (what `kubectl create token` asks), for ten minutes."""
    request = {"spec": {"expirationSeconds": seconds, "audiences": [audience] if audience else []}}
    answer = client.CoreV1Api(api_client).create_namespaced_service_account_token(account, namespace, request)  # type: ignore[arg-type]
    token: str = answer.status.token
    return token


def token_kubeconfig(api_client: client.ApiClient, namespace: str, account: str, directory: Path) -> Path:
    """A kubeconfig that authenticates as ``account`` by its own token, and only by it."""
    token = service_account_token(api_client, namespace, account)
    return write_token_kubeconfig(
        directory / f"{account}.kubeconfig", api_client.configuration, token, account
    )


def kubectl_with(kubectl_binary: Path, kubeconfig: Path) -> KubectlAs:
    """kubectl under another kubeconfig (the `kubectl` fixture always uses the admin one)."""
    return kubectl_runner(kubectl_binary, kubeconfig, timeout=60)


# --- the function, served as in its image ----------------------------------------------------
def call(
    server: FunctionServer, method: str, path: str, token: str | None, **kwargs: Any
) -> requests.Response:
    """An HTTP request to the function, as the caller whose ``token`` it is (None: no credentials)."""
    headers = {
        **({"Authorization": f"Bearer {token}"} if token is not None else {}),
        **kwargs.pop("headers", {}),
    }
    return requests.request(method, server.url + path, headers=headers, timeout=30, **kwargs)
