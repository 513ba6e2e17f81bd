"""Newest-first listings read windows of creation time: checked against reading everything.

Jobs are made directly with chosen ``jobfn.dev/created-ms`` labels (dense bursts, ties,
years of sparse history, names in time order and random, jobs without the label as
k8s-jobs leaves them), then paged through with windows far smaller than a page, so that
every way of narrowing and widening a window is taken on the real API server.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client as k8s

from jobfn._contract import CREATED_LABEL, DEFINITION_LABEL, JobSigner, random_job_name
from jobfn._kube import KubeApi
from jobfn._store import JobStore
from jobfn._submission import JobView
from tests.helpers import create_namespace

SIGNATURE = "jobfn-windows"
DAY_MS = 86_400_000
BASE_MS = 1_760_000_000_000


def _job(name: str, definition: str, created_ms: int | None, signature: str = SIGNATURE) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": signature, DEFINITION_LABEL: definition}
    if created_ms is not None:
        labels[CREATED_LABEL] = str(created_ms)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            # An absent controller owns it: no pods, nothing changes it while it is listed.
            "managedBy": "tests.jobfn.dev/nobody",
            "suspend": True,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]}
            },
        },
    }


def _history(seed: int) -> list[dict[str, Any]]:
    draw = random.Random(seed)
    jobs = [_job(f"burst-{i:04d}", "echo", BASE_MS + 300 * i) for i in range(80)]  # names in time order
    jobs += [_job(random_job_name("echo"), "echo", BASE_MS - week * 7 * DAY_MS) for week in range(1, 31)]
    jobs += [_job(random_job_name("echo"), "echo", BASE_MS + 10_000_000 + i) for i in range(10)]  # one second
    jobs += [_job(random_job_name("echo"), "echo", BASE_MS + draw.randrange(400 * DAY_MS)) for _ in range(20)]
    jobs += [_job(random_job_name("other"), "other", BASE_MS + draw.randrange(DAY_MS)) for _ in range(10)]
    jobs += [_job(random_job_name("legacy"), "legacy", None) for _ in range(15)]  # k8s-jobs' jobs
    jobs += [_job(random_job_name("echo"), "echo", BASE_MS, signature="someone-else") for _ in range(5)]
    return jobs


@pytest.fixture(scope="module")
def module_namespace(api_client: Any) -> Iterator[str]:
    name = create_namespace(api_client, "listing-windows")
    yield name
    k8s.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def history(api_client: Any, module_namespace: str) -> list[dict[str, Any]]:
    """The jobs as the API server holds them, made once for the module."""
    api = KubeApi(api_client)
    path = f"/apis/batch/v1/namespaces/{module_namespace}/jobs"
    with ThreadPoolExecutor(8) as pool:
        return list(
            pool.map(lambda job: api.request("POST", path, body=job, doing="create job"), _history(7))
        )


def _store(api_client: Any, namespace: str, window_limit: int = 1000) -> JobStore:
    return JobStore(KubeApi(api_client), namespace, JobSigner(SIGNATURE), window_limit)


def _position(job: dict[str, Any]) -> tuple[int, str]:
    """When the job was created, to the second (as labelled, else as stamped), then its name."""
    metadata = job["metadata"]
    label = metadata["labels"].get(CREATED_LABEL)
    if label is not None:
        return int(label) // 1000, metadata["name"]
    return int(datetime.fromisoformat(metadata["creationTimestamp"]).timestamp()), metadata["name"]


def _every_page(store: JobStore, limit: int, **listing: Any) -> list[str]:
    names: list[str] = []
    token = None
    while True:
        page = store.newest_first(limit=limit, next_token=token, **listing)
        names += [view.name for view in page.jobs]
        assert len(page.jobs) == limit or page.next_token is None, "a page is short while more jobs match"
        token = page.next_token
        if token is None:
            return names


def _expected(history: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> list[str]:
    mine = [job for job in history if job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == SIGNATURE]
    return [job["metadata"]["name"] for job in sorted(filter(keep, mine), key=_position, reverse=True)]


@pytest.mark.parametrize(("window_limit", "limit"), [(1000, 100), (7, 50), (7, 3), (2, 10)])
def test_pages_hold_every_job_newest_first_as_reading_everything_would(
    history: list[dict[str, Any]], api_client: Any, module_namespace: str, window_limit: int, limit: int
) -> None:
    store = _store(api_client, module_namespace, window_limit)
    assert _every_page(store, limit) == _expected(history, lambda job: True)


@pytest.mark.parametrize("window_limit", [1000, 5])
def test_filters_narrow_windows_without_losing_jobs(
    history: list[dict[str, Any]], api_client: Any, module_namespace: str, window_limit: int
) -> None:
    store = _store(api_client, module_namespace, window_limit)
    assert _every_page(store, 4, labels={DEFINITION_LABEL: "other"}) == _expected(
        history, lambda job: job["metadata"]["labels"][DEFINITION_LABEL] == "other"
    )

    def rare(view: JobView) -> bool:  # about one job in six: windows fill slowly
        return view.name.endswith(("a", "7", "x", "q", "0", "3"))

    assert _every_page(store, 6, keep=rare) == _expected(
        history, lambda job: job["metadata"]["name"].endswith(("a", "7", "x", "q", "0", "3"))
    )
