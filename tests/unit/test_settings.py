"""The function's settings: read once from the environment, each mistake naming its variable."""

from __future__ import annotations

import pytest

from jobfn._errors import ConfigurationError
from jobfn._settings import load_settings

BASE = {"JOB_NAMESPACE": "jobs", "JOB_SIGNATURE": "team-a"}


def test_defaults_and_the_k8s_jobs_variables() -> None:
    settings = load_settings({**BASE, "JOB_DEFINITIONS_CONFIG_PATH": "/etc/jobfn/definitions.yaml"})
    assert (settings.namespace, settings.signature, str(settings.definitions_path)) == (
        "jobs",
        "team-a",
        "/etc/jobfn/definitions.yaml",
    )
    assert (settings.auth, settings.max_in_flight, settings.server_threads) == ("none", 0, 0)


def test_server_threads_come_from_functions_frameworks_threads_variable() -> None:
    assert load_settings({**BASE, "THREADS": "50"}).server_threads == 50


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("THREADS", "many"),
        ("JOBFN_MAX_IN_FLIGHT", "-1"),
        ("JOBFN_MAX_BODY_BYTES", "1MB"),
        ("JOBFN_API_TIMEOUT_SECONDS", "0"),
        ("JOBFN_AUTH", "basic"),
        ("JOB_SIGNATURE", "not a label value"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        load_settings({**BASE, name: value})


def test_aws_credentials_come_in_pairs_and_the_secret_is_never_shown() -> None:
    with pytest.raises(ConfigurationError, match="JOBFN_AWS_SECRET_ACCESS_KEY is not set"):
        load_settings({**BASE, "JOBFN_AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"})
    settings = load_settings(
        {**BASE, "JOBFN_AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "JOBFN_AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}
    )
    assert "s3cr3t-value" not in repr(settings)


def test_the_event_audience_needs_token_review_and_is_one_printable_word() -> None:
    secured = {**BASE, "JOBFN_AUTH": "tokenreview"}
    assert load_settings(secured).event_audience is None
    assert load_settings({**secured, "JOBFN_EVENT_AUDIENCE": "jobfn"}).event_audience == "jobfn"
    with pytest.raises(ConfigurationError, match="JOBFN_EVENT_AUDIENCE is set but JOBFN_AUTH"):
        load_settings({**BASE, "JOBFN_EVENT_AUDIENCE": "jobfn"})
    with pytest.raises(ConfigurationError, match="JOBFN_EVENT_AUDIENCE="):
        load_settings({**secured, "JOBFN_EVENT_AUDIENCE": "two words"})
