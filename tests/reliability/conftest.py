"""Fixtures of the reliability tests: a fault cluster of their own, namespaces and the function on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from tests.helpers import FunctionServer, create_namespace
from tests.reliability.faults import FaultCluster, free_port_block, start_fault_function


@pytest.fixture(scope="session")
def fault_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    """etcd + kube-apiserver of their own, free to be killed; stopped and removed at the end."""
    cluster = FaultCluster(tmp_path_factory.mktemp("fault-cluster"), free_port_block())
    try:
        yield cluster.up()
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def fault_api(fault_cluster: FaultCluster) -> Iterator[k8s.ApiClient]:
    """An admin API client of the fault cluster."""
    with fault_cluster.api_client() as api:
        yield api


@pytest.fixture
def fault_namespace(fault_api: k8s.ApiClient, request: pytest.FixtureRequest) -> str:
    """A fresh namespace in the fault cluster (never deleted: the cluster is thrown away)."""
    return create_namespace(fault_api, request.node.name, wait_for_service_account=False)


@pytest.fixture
def fault_function(
    fault_cluster: FaultCluster, fault_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    """The function serving the e2e definitions in ``fault_namespace`` of the fault cluster."""
    server = start_fault_function(fault_cluster, fault_namespace, tmp_path_factory.mktemp("function"))
    yield server
    server.stop()
