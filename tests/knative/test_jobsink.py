"""Knative Eventing's JobSink runs in the same cluster as jobfn (the benchmark compares jobfn's
CloudEvents door with it): an event POSTed to it becomes one Job, a redelivery none more."""

from __future__ import annotations

import uuid

import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from tests.helpers import Kubectl, wait_for
from tests.knative.jobsink import NAME_LABEL, JobSinkAddress
from tests.knative.services import get_json, in_cluster


def test_an_event_sent_twice_to_the_jobsink_makes_one_job(jobsink: JobSinkAddress, kubectl: Kubectl) -> None:
    event = CloudEvent(
        {"type": "dev.jobfn.bench", "source": "/tests/knative/jobsink", "id": uuid.uuid4().hex}, {"n": 1}
    )
    headers, body = to_binary(event)

    first = jobsink.send(dict(headers), body)
    again = jobsink.send(dict(headers), body)

    assert first.status_code == again.status_code == 202, first.text
    assert first.headers["Location"] == again.headers["Location"]
    jobs = wait_for(
        lambda: get_json(kubectl, "jobs", "-n", jobsink.namespace, "-l", f"{NAME_LABEL}={jobsink.name}")[
            "items"
        ],
        timeout=60,
        what="the JobSink's job",
    )
    assert len(jobs) == 1
    assert jobsink.url.endswith(f"/{jobsink.namespace}/{jobsink.name}")


def test_the_jobsink_refuses_an_event_without_a_token(jobsink: JobSinkAddress) -> None:

    event = CloudEvent(
        {"type": "dev.jobfn.bench", "source": "/tests/knative/jobsink", "id": uuid.uuid4().hex}, {}
    )
    headers, body = to_binary(event)
    answer = in_cluster(lambda: requests.post(jobsink.post_url, data=body, headers=dict(headers), timeout=30))

    assert answer.status_code == 401
