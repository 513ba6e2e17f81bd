"""Fixtures for tests of the core library against the local cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobfn._contract import JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._kube import KubeApi
from jobfn._manager import JobManager

DEFINITIONS_DIR = Path(__file__).parent.parent / "data" / "definitions"
SIGNATURE = "jobfn-test"


@pytest.fixture(scope="session")
def core_definitions() -> JobDefinitions:
    return JobDefinitions.from_yaml((DEFINITIONS_DIR / "core.yaml").read_text())


@pytest.fixture
def manager(namespace: str, api_client: Any, core_definitions: JobDefinitions) -> JobManager:
    """A manager signing with ``jobfn-test`` in the test's own namespace."""
    return JobManager(namespace, JobSigner(SIGNATURE), core_definitions, api=KubeApi(api_client))
