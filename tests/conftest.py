"""Shared fixtures for tests that need Kubernetes.

The cluster is the one named by $KUBECONFIG when that is reachable, otherwise the local
one from tests/cluster (started on demand, left running for the next session; stop it
with `python -m tests.cluster down`). Tests using these fixtures get the `cluster` marker.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.cluster import localcluster
from tests.helpers import TEST_NAMESPACE_LABEL, Kubectl, kubectl_runner

CLUSTER_FIXTURES = frozenset({"kubeconfig", "api_client", "namespace", "kubectl", "kueue"})
FUNC_BUILD_SCRIPT = Path(__file__).resolve().parent / "tools" / "build-func.sh"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs the local Kubernetes API server (started on demand)")


# `make test` runs the suite on two workers (`-n 2 --dist loadgroup`): most of its time is spent
# waiting on pods, Knative's timers and subprocesses, not on CPU. A unit of work is one module,
# so module fixtures (a function server, an applied deploy/) are set up once; a directory whose
# session fixtures are costly to make twice (Knative's deployed function and JobSink, the
# engines' virtualenv, the fault cluster) is one unit. Units are handed out slowest first
# (`--no-loadscope-reorder` keeps this order), so no worker is left with a long tail.
WHOLE_DIRECTORY_UNITS = frozenset({"knative", "engines", "reliability"})
SLOWEST_FIRST = ("knative", "e2e", "deploy", "engines", "integration", "bench", "reliability")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a cluster fixture, so `-m "not cluster"` skips them; on
    workers, group and order the tests as above."""
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)
    if not getattr(config.option, "loadgroup", False):  # set on xdist's workers, where dist reads "no"
        return
    tests_dir = Path(__file__).resolve().parent

    def module(item: pytest.Item) -> Path:  # tests/<directory>/<module>.py, relative to tests/
        return item.path.resolve().relative_to(tests_dir)

    def rank(item: pytest.Item) -> int:
        directory = module(item).parts[0]
        return SLOWEST_FIRST.index(directory) if directory in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: collection order within a directory
    _give_each_item_its_own_id(items)
    for item in items:
        path = module(item)
        unit = path.parts[0] if path.parts[0] in WHOLE_DIRECTORY_UNITS else path.as_posix()
        item.add_marker(pytest.mark.xdist_group(unit))


def _give_each_item_its_own_id(items: list[pytest.Item]) -> None:
    """xdist hands tests out by node id, and runs only the first of items that share one.
    schemathesis names its items by operation (`test[GET /jobs]`) but gives them all the
    function's id; each gets its name as its id, and any id still shared stops the run."""
    for item in items:
        parent, _, last = item.nodeid.rpartition("::")
        if last != item.name:
            item._nodeid = f"{parent}::{item.name}"  # the same private field xdist sets for groups
    shared = [nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1]
    if shared:
        raise pytest.UsageError(f"these test ids are shared, so xdist would run only one of each: {shared}")


def _reachable(kubeconfig: str) -> bool:
    try:
        with config.new_client_from_config(config_file=kubeconfig) as api:
            client.VersionApi(api).get_code(_request_timeout=5)
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """Path of an admin kubeconfig; also exported as $KUBECONFIG, with kubectl on $PATH."""
    given = os.environ.get("KUBECONFIG")
    ours = given and Path(given).resolve() == localcluster.kubeconfig_path().resolve()
    # The local cluster is (re)started as needed; any other reachable cluster is used as is.
    path = Path(given) if given and not ours and _reachable(given) else localcluster.ensure_running()
    os.environ["KUBECONFIG"] = str(path)
    os.environ["PATH"] = f"{localcluster.bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"
    return path


@pytest.fixture(scope="session")
def kueue(kubeconfig: Path) -> Iterator[float]:
    """Kueue on the local cluster, built and installed on first use and running while some
    session uses it (tests/kueue/install.py); the seconds making sure of it took. It sees
    only namespaces labelled ``jobfn.test/kueue=true``."""
    from tests.kueue.install import in_use  # only the Kueue tests pay for its build

    with in_use(kubeconfig) as seconds:
        yield seconds


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient with admin rights."""
    with config.new_client_from_config(config_file=str(kubeconfig)) as api:
        yield api


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    """Run kubectl: kubectl("get", "pods", "-n", ns, input=None, check=True) -> CompletedProcess."""
    return kubectl_runner(localcluster.kubectl_path(), kubeconfig)


@pytest.fixture
def namespace(api_client: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace labelled jobfn-test=true, deleted (in the background) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "true"}))
    )
    _wait_for_default_service_account(core, name)
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def _wait_for_default_service_account(core: client.CoreV1Api, namespace: str, timeout: float = 30) -> None:
    # Pods are refused until the controller-manager has created the namespace's "default" SA.
    deadline = time.monotonic() + timeout
    while not core.list_namespaced_service_account(namespace, field_selector="metadata.name=default").items:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no default ServiceAccount in {namespace} after {timeout}s")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def func_binary() -> Path:
    """The Knative func CLI, built from its Go module by tests/tools/build-func.sh (once per machine)."""
    result = subprocess.run(
        ["bash", str(FUNC_BUILD_SCRIPT)], capture_output=True, text=True, timeout=3600, check=False
    )
    assert result.returncode == 0, f"func could not be built from its module:\n{result.stderr[-4000:]}"
    return Path(result.stdout.strip().splitlines()[-1])
