"""Each ServiceAccount of deploy/, with its own token, can do exactly what its Role lists and nothing else."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.deploy.conftest import Installation, kubectl_with, token_kubeconfig
from tests.helpers import Kubectl, create_namespace, wait_for

# What function/manager.py and reaper/ call: resource → verbs, in the jobs namespace.
FUNCTION_GRANTS = {
    "jobs.batch": {"create", "get", "list", "patch"},
    "pods": {"list", "patch"},  # patch: the decision on a pod waiting in its gate
    "pods/log": {"get"},
    "events": {"list"},  # the dashboard shows a job's events
    "leases.coordination.k8s.io": {"create", "get", "update"},  # max_active_jobs' places
}
REAPER_GRANTS = {
    "jobs.batch": {"get", "list", "patch", "delete"},
    "pods": {"list", "patch"},
}
# Cluster-wide, the function may only ask who a caller's token belongs to.
FUNCTION_CLUSTER_GRANTS = {"tokenreviews.authentication.k8s.io": {"create"}}

Rules = dict[str, set[str]]


def granted(kubectl_as: Kubectl, namespace: str) -> Rules:
    """`kubectl auth can-i --list -n namespace` as resource → verbs (resource names kept in the key)."""
    output = kubectl_as("auth", "can-i", "--list", "--no-headers", "-n", namespace).stdout
    rules: Rules = {}
    for line in output.splitlines():
        match = re.match(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$", line)
        assert match, f"unexpected line in `kubectl auth can-i --list`: {line!r}"
        resource, _urls, names, verbs = match.groups()
        if resource:  # non-resource URLs (discovery, /healthz, ...) are everyone's
            key = f"{resource}[{names}]" if names else resource
            rules.setdefault(key, set()).update(verbs.split())
    return rules


def beyond(rules: Rules, baseline: Rules) -> Rules:
    """What ``rules`` grant that the baseline does not."""
    extra = {resource: verbs - baseline.get(resource, set()) for resource, verbs in rules.items()}
    return {resource: verbs for resource, verbs in extra.items() if verbs}


@pytest.fixture(scope="module")
def kubeconfigs(
    installed: Installation,
    api_client: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """role → a kubeconfig with only that ServiceAccount's token; "baseline" is the namespace's
    `default` ServiceAccount, bound to nothing, i.e. what every authenticated caller may do."""
    directory = tmp_path_factory.mktemp("kubeconfigs")
    accounts = {
        "function": installed.function_account,
        "reaper": installed.reaper_account,
        "baseline": "default",
    }
    found = {
        role: token_kubeconfig(api_client, installed.namespace, account, directory)
        for role, account in accounts.items()
    }
    # RoleBindings take effect within moments of being applied, not at once.
    wait_for(lambda: _can(found["reaper"], "delete", "jobs", "batch", installed.namespace), timeout=30)
    return found


@pytest.fixture(scope="module")
def other_namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A namespace deploy/ is not installed in."""
    name = create_namespace(api_client, "deploy-rbac-elsewhere")
    yield name
    client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


@pytest.mark.parametrize(("role", "grants"), [("function", FUNCTION_GRANTS), ("reaper", REAPER_GRANTS)])
def test_in_the_jobs_namespace_each_account_has_exactly_its_grants(
    role: str, grants: Rules, installed: Installation, kubeconfigs: dict[str, Path], kubectl_binary: Path
) -> None:
    baseline = granted(kubectl_with(kubectl_binary, kubeconfigs["baseline"]), installed.namespace)
    rules = granted(kubectl_with(kubectl_binary, kubeconfigs[role]), installed.namespace)
    cluster_wide = FUNCTION_CLUSTER_GRANTS if role == "function" else {}

    assert beyond(rules, baseline) == {**grants, **cluster_wide}


@pytest.mark.parametrize("role", ["function", "reaper"])
def test_elsewhere_each_account_has_nothing_but_the_functions_tokenreview(
    role: str,
    other_namespace: str,
    kubeconfigs: dict[str, Path],
    kubectl_binary: Path,
) -> None:
    baseline = granted(kubectl_with(kubectl_binary, kubeconfigs["baseline"]), other_namespace)
    rules = granted(kubectl_with(kubectl_binary, kubeconfigs[role]), other_namespace)

    assert beyond(rules, baseline) == (FUNCTION_CLUSTER_GRANTS if role == "function" else {})


# One row per request: verb, resource, API group, where ("" is every namespace,
# None the jobs namespace), and whether the function and the reaper may make it.
MATRIX = [
    ("create", "jobs", "batch", None, True, False),
    ("get", "jobs", "batch", None, True, True),  # the reaper: a waiting job's dependencies
    ("list", "jobs", "batch", None, True, True),
    ("watch", "jobs", "batch", None, False, False),
    ("patch", "jobs", "batch", None, True, True),
    ("update", "jobs", "batch", None, False, False),
    ("delete", "jobs", "batch", None, False, True),
    ("deletecollection", "jobs", "batch", None, False, False),
    ("list", "pods", "", None, True, True),
    ("get", "pods", "", None, False, False),
    ("create", "pods", "", None, False, False),
    ("delete", "pods", "", None, False, False),
    ("get", "pods/log", "", None, True, False),
    ("create", "pods/exec", "", None, False, False),
    ("get", "secrets", "", None, False, False),
    ("list", "secrets", "", None, False, False),
    ("get", "configmaps", "", None, False, False),
    ("create", "serviceaccounts/token", "", None, False, False),
    ("create", "cronjobs", "batch", None, False, False),
    ("create", "deployments", "apps", None, False, False),
    ("create", "rolebindings", "rbac.authorization.k8s.io", None, False, False),
    ("create", "services", "serving.knative.dev", None, False, False),
    ("list", "jobs", "batch", "default", False, False),
    ("create", "jobs", "batch", "default", False, False),
    ("list", "jobs", "batch", "", False, False),
    ("list", "secrets", "", "", False, False),
    ("list", "namespaces", "", "", False, False),
    ("list", "nodes", "", "", False, False),
    ("create", "clusterrolebindings", "rbac.authorization.k8s.io", "", False, False),
    ("create", "customresourcedefinitions", "apiextensions.k8s.io", "", False, False),
    ("create", "tokenreviews", "authentication.k8s.io", "", True, False),
    ("create", "subjectaccessreviews", "authorization.k8s.io", "", False, False),
    ("create", "certificatesigningrequests", "certificates.k8s.io", "", False, False),
]


def _can(kubeconfig: Path | client.ApiClient, verb: str, resource: str, group: str, namespace: str) -> bool:
    """`kubectl auth can-i`'s question (a SelfSubjectAccessReview), asked as ``kubeconfig``'s user."""
    resource, _, subresource = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "verb": verb,
                "resource": resource,
                "subresource": subresource,
                "group": group,
                "namespace": namespace,
            }
        },
    }
    if isinstance(kubeconfig, client.ApiClient):
        answer = client.AuthorizationV1Api(kubeconfig).create_self_subject_access_review(review)  # type: ignore[arg-type]
    else:
        with config.new_client_from_config(config_file=str(kubeconfig)) as api:
            return _can(api, verb, resource, group, namespace)
    return bool(answer.status.allowed)


def test_the_can_i_matrix_of_both_accounts(installed: Installation, kubeconfigs: dict[str, Path]) -> None:
    answers, expected = {}, {}
    with (
        config.new_client_from_config(config_file=str(kubeconfigs["function"])) as function,
        config.new_client_from_config(config_file=str(kubeconfigs["reaper"])) as reaper,
    ):
        for verb, resource, group, where, function_may, reaper_may in MATRIX:
            namespace = installed.namespace if where is None else where
            row = f"{verb} {resource}{'.' + group if group else ''} in {namespace or 'all namespaces'}"
            answers[row] = (
                _can(function, verb, resource, group, namespace),
                _can(reaper, verb, resource, group, namespace),
            )
            expected[row] = (function_may, reaper_may)

    assert answers == expected
