"""Submission planning: from definitions and a submission to the exact Job to create, in one pure step.

Validate the caller and the arguments, render the template, force jobfn's identity
and the caller's overrides onto it, and route it to its queue: each core module is
visited once, and nothing here does I/O, so every rule of a submission is tested
without a cluster. The manager only does what needs the API (cap check, create).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._attempts import ARRAY, job_kind, shape_attempts
from ._contract import JobSigner, keyed_job_name, random_job_name
from ._definitions import JobDefinition, JobDefinitions
from ._dependencies import n_to_n, sequential
from ._errors import DefinitionError, InvalidRequest
from ._policy import add_batch_environment, check_caller_allowed, check_labels, shape_job
from ._queues import place
from ._submission import MAX_IDEMPOTENCY_KEY_LENGTH, Submission

#: The image of the gate init container (``_attempts``): any with a POSIX sh, sed and sleep.
DEFAULT_GATE_IMAGE = "busybox:1.36"


@dataclass(frozen=True)
class JobPlan:
    """What a submission will create: the definition it follows and the Job manifest."""

    definition: JobDefinition
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        name: str = self.manifest["metadata"]["name"]
        return name


def plan_submission(
    definitions: JobDefinitions,
    submission: Submission,
    signer: JobSigner,
    namespace: str,
    random_name: Callable[[str], str] = random_job_name,
    gate_image: str = DEFAULT_GATE_IMAGE,
) -> JobPlan:
    """The Job ``submission`` asks for, or the 4xx error saying everything wrong with it.

    With an idempotency key the name is the key's one name, so retries of a
    submission plan the same Job; without one, ``random_name`` draws it.
    """
    definition = definitions.get(submission.definition)
    check_caller_allowed(definition, submission.caller, submission.caller_groups)
    arguments = definition.validate(submission.arguments)
    key = submission.idempotency_key
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidRequest(f"an idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    queue = None
    if submission.queue is not None:
        check_labels({"queue": submission.queue})
        queue = definitions.queues.get(submission.queue)
    manifest = shape_job(
        definition.template.render(arguments),
        name=keyed_job_name(definition.name, key) if key is not None else random_name(definition.name),
        namespace=namespace,
        signer=signer,
        definition=definition,
        submission=submission,
        arguments=arguments,
    )
    if queue is not None:
        queue.apply(manifest)
    environments = definitions.queues.placement(queue)
    place(manifest, environments)
    n_to_n_jobs = n_to_n(submission.depends_on)
    if n_to_n_jobs and job_kind(manifest) != ARRAY:
        raise InvalidRequest("dependsOn: N_TO_N makes each child wait for the same child of another array "
                             "job; submit an array job (arrayProperties.size)")  # fmt: skip
    shape_attempts(
        manifest,
        rules=submission.overrides.retry_rules or definition.retry_rules,
        n_to_n=n_to_n_jobs,
        sequential=sequential(submission.depends_on),
        batch=submission.batch_environment,
        gate_image=gate_image,
    )
    if submission.batch_environment:
        first = environments[0].name if environments else None
        add_batch_environment(manifest, submission.queue, first)
    return JobPlan(definition, manifest)


def sketch_job(definition: JobDefinition, placeholder: Callable[[str], str]) -> dict[str, Any] | None:
    """The definition's Job with each parameter shown as ``placeholder(name)`` (AWS's ``Ref::name``).

    None for a template that computes with its values, which placeholders cannot show.
    """
    try:
        return definition.template.render({name: placeholder(name) for name in definition.parameters})
    except DefinitionError:
        return None
