"""The names jobfn shares with k8s-jobs and with its own reaper, defined once.

Changing any value here breaks every deployed reaper and every operator's
``kubectl get jobs -l ...``; they are a contract, not configuration.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import string
from collections.abc import Mapping
from typing import Any

# --- the k8s-jobs contract -------------------------------------------------------------
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
DEFINITION_LABEL = "job_definition_name"
DELETION_TIME_ANNOTATION = "job_deletion_time_unix_sec"

SIGNATURE_ENV = "JOB_SIGNATURE"
NAMESPACE_ENV = "JOB_NAMESPACE"
DEFINITIONS_PATH_ENV = "JOB_DEFINITIONS_CONFIG_PATH"

# --- jobfn's own annotations (prefixed, so they never clash with a template's) ----------
ANNOTATION_PREFIX = "jobfn.dev/"
ARGUMENTS_ANNOTATION = ANNOTATION_PREFIX + "arguments"
IDEMPOTENCY_KEY_ANNOTATION = ANNOTATION_PREFIX + "idempotency-key"
REQUEST_HASH_ANNOTATION = ANNOTATION_PREFIX + "request-hash"
TERMINATION_REASON_ANNOTATION = ANNOTATION_PREFIX + "termination-reason"
TAGS_ANNOTATION = ANNOTATION_PREFIX + "tags"
OVERRIDES_ANNOTATION = ANNOTATION_PREFIX + "overrides"
DEFINITION_REVISION_ANNOTATION = ANNOTATION_PREFIX + "definition-revision"
DEPENDS_ON_ANNOTATION = ANNOTATION_PREFIX + "depends-on"
#: The state a state-change event was last sent for (``_state_events``).
ANNOUNCED_STATE_ANNOTATION = ANNOTATION_PREFIX + "announced-state"
#: The tag a job's AWS ``jobName`` is kept under (its jobId is the Kubernetes name).
AWS_JOB_NAME_TAG = ANNOTATION_PREFIX + "aws-job-name"
#: On a job still waiting for its dependencies (the pass lists jobs by it).
WAITING_LABEL = ANNOTATION_PREFIX + "waiting"
CALLER_ANNOTATION = ANNOTATION_PREFIX + "submitted-by"
#: A Job that runs Indexed without being an array: ``single`` (so its attempts are counted) or
#: ``multinode`` (one index per node).
JOB_KIND_ANNOTATION = ANNOTATION_PREFIX + "kind"
#: The share of its vCPUs a registered definition's job requests (the operator's overcommit).
CPU_REQUEST_RATIO_ANNOTATION = ANNOTATION_PREFIX + "cpu-request-ratio"
#: The pod label of a multi-node job's nodes (the jobfn-nodes Service selects it).
MULTINODE_LABEL = ANNOTATION_PREFIX + "multinode"
#: The pod label of pods whose gate waits for a decision of the pass (``_attempts``).
GATE_LABEL = ANNOTATION_PREFIX + "gate"
#: On a waiting pod: the pass's decision (run or exit) and why.
DECISION_ANNOTATION = ANNOTATION_PREFIX + "decision"
DECISION_REASON_ANNOTATION = ANNOTATION_PREFIX + "decision-reason"
#: On a pod: the evaluateOnExit rules the pass decides, and the jobs its index waits for (N_TO_N).
RETRY_RULES_ANNOTATION = ANNOTATION_PREFIX + "retry-rules"
N_TO_N_ANNOTATION = ANNOTATION_PREFIX + "n-to-n"
#: The scheduling gate an N_TO_N child's pod is created with, removed once it may run.
SCHEDULING_GATE = ANNOTATION_PREFIX + "n-to-n"
QUEUE_LABEL = ANNOTATION_PREFIX + "queue"
#: On a job waiting for its dependencies: the Kueue LocalQueue it joins when they are met.
KUEUE_QUEUE_ANNOTATION = ANNOTATION_PREFIX + "kueue-queue"
#: SUCCEEDED or FAILED, on a finished job (written with the reaper's mark, in the same
#: request): an index, so a listing by state or the active-jobs cap selects the jobs it
#: needs and not every job. A finished job never changes, so the label is never stale;
#: a job without it is examined by its status (``_status.candidates_selector``).
FINAL_STATE_LABEL = ANNOTATION_PREFIX + "final-state"
#: When jobfn created the job, in Unix milliseconds: the job's ``created`` (``_times``), so the
#: order of every newest-first listing, and an index for it. A label selector compares integer
#: values (``key>n``, ``key<n``), so a listing reads windows of time, not the whole namespace
#: (``_store.newest_first``).
CREATED_LABEL = ANNOTATION_PREFIX + "created-ms"

#: The extended resource GPUs are requested by (NVIDIA's device plugin), as AWS Batch's GPU maps to it.
GPU_RESOURCE = "nvidia.com/gpu"

# The pod label the Job controller sets (the short ``job-name`` is its legacy twin).
JOB_NAME_POD_LABEL = "batch.kubernetes.io/job-name"
JOB_UID_POD_LABEL = "batch.kubernetes.io/controller-uid"

MAX_NAME_LENGTH = 63  # Job names become pod labels, which are capped at 63 characters.
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_RANDOM_SUFFIX_LENGTH = 8
_RANDOM_SUFFIX_BITS = 64  # 36**8 < 2**42: taken modulo, 64 bits leave no noticeable bias
_KEYED_SUFFIX_LENGTH = 16  # hex digits of sha256: 64 bits, and a stored key settles a clash
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_label_value(value: str) -> bool:
    """Whether ``value`` is a valid Kubernetes label value."""
    return bool(_LABEL_VALUE.match(value))


def is_label_key(key: str) -> bool:
    """Whether ``key`` is a valid Kubernetes label key: ``[dns-subdomain/]name``."""
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return bool(name) and bool(_LABEL_VALUE.match(name))


class JobSigner:
    """Marks jobs as created by one deployment and selects them again.

    Same behaviour as k8s-jobs' ``JobSigner``: ``sign`` sets the managed-by and
    definition labels; ``label_selector`` matches exactly the jobs ``sign`` marked.
    """

    def __init__(self, signature: str) -> None:
        if not signature or not is_label_value(signature):
            raise ValueError(f"signature {signature!r} is not a valid Kubernetes label value")
        self.signature = signature

    def sign(self, job: dict[str, Any], job_definition_name: str | None = None) -> None:
        """Set the signature (and definition) labels on a Job manifest, in place."""
        labels = job.setdefault("metadata", {}).setdefault("labels", {})
        labels[MANAGED_BY_LABEL] = self.signature
        if job_definition_name:
            labels[DEFINITION_LABEL] = job_definition_name

    def label_selector(
        self,
        job_definition_name: str | None = None,
        extra_labels: Mapping[str, str] | None = None,
        also: str | None = None,
    ) -> str:
        """The label selector for this signature's jobs, optionally narrowed (``also``: a
        requirement as the API spells it, e.g. ``!key``)."""
        parts = [f"{MANAGED_BY_LABEL}={self.signature}"]
        if job_definition_name:
            parts.append(f"{DEFINITION_LABEL}={job_definition_name}")
        for key, value in (extra_labels or {}).items():
            parts.append(f"{key}={value}")
        if also:
            parts.append(also)
        return ",".join(parts)

    def is_signed(self, job: Mapping[str, Any]) -> bool:
        """Whether a Job manifest carries this signature."""
        labels = (job.get("metadata") or {}).get("labels") or {}
        return bool(labels.get(MANAGED_BY_LABEL) == self.signature)


@functools.lru_cache(maxsize=256)  # a handful of definitions, one prefix each per submission
def name_prefix(definition_name: str, suffix_length: int) -> str:
    """A DNS-1123 prefix derived from a definition name, short enough for the suffix."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", definition_name.lower()).strip("-")
    cleaned = re.sub(r"-{2,}", "-", cleaned) or "job"
    limit = MAX_NAME_LENGTH - suffix_length - 1
    return cleaned[:limit].rstrip("-") or "job"


def random_job_name(definition_name: str) -> str:
    """A fresh unique name: readable prefix from the definition plus a random suffix."""
    draw = secrets.randbits(_RANDOM_SUFFIX_BITS)  # one draw, not one per character
    suffix = ""
    for _ in range(_RANDOM_SUFFIX_LENGTH):
        draw, index = divmod(draw, len(_SUFFIX_ALPHABET))
        suffix += _SUFFIX_ALPHABET[index]
    return f"{name_prefix(definition_name, _RANDOM_SUFFIX_LENGTH)}-{suffix}"


def keyed_job_name(definition_name: str, idempotency_key: str) -> str:
    """The one name a definition's job submitted with ``idempotency_key`` can have.

    The API server refuses a second Job with the same name, so two submissions with
    one key can never both create a job, however they race.
    """
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:_KEYED_SUFFIX_LENGTH]
    return f"{name_prefix(definition_name, _KEYED_SUFFIX_LENGTH)}-{digest}"
