"""The names shared with k8s-jobs and the reaper, and job naming."""

from __future__ import annotations

import json
import re

import pytest

from jobfn._contract import (
    MAX_NAME_LENGTH,
    JobSigner,
    keyed_job_name,
    random_job_name,
)

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_contract_names_match_k8s_jobs() -> None:
    signer = JobSigner("svc")
    job: dict[str, object] = {"metadata": {}}
    signer.sign(job, "pi")
    assert job == {
        "metadata": {"labels": {"app.kubernetes.io/managed-by": "svc", "job_definition_name": "pi"}}
    }
    assert signer.label_selector("pi") == "app.kubernetes.io/managed-by=svc,job_definition_name=pi"
    assert signer.label_selector(extra_labels={"a": "b"}) == "app.kubernetes.io/managed-by=svc,a=b"


@pytest.mark.parametrize("definition", ["pi", "Under_Score.and.Dots", "x" * 200, "---", "9-lives"])
def test_generated_names_are_valid_dns_labels(definition: str) -> None:
    for name in (random_job_name(definition), keyed_job_name(definition, "key")):
        assert len(name) <= MAX_NAME_LENGTH
        assert DNS_1123.match(name), name


def test_random_names_differ() -> None:
    assert len({random_job_name("pi") for _ in range(1000)}) == 1000


def test_keyed_name_is_stable_and_keys_do_not_collide() -> None:
    assert keyed_job_name("pi", "k") == keyed_job_name("pi", "k")
    pairs = [("a", "bc"), ("ab", "c")]
    names = {keyed_job_name("pi", json.dumps(pair)) for pair in pairs}
    assert len(names) == 2


def test_signature_must_be_a_label_value() -> None:
    with pytest.raises(ValueError, match="label value"):
        JobSigner("not a label!")
