"""Registered job definitions (AWS Batch's RegisterJobDefinition): the stored revision,
the operator's bounds on it, and which revision a submission follows.

A request is read into a ``Registration`` by ``_registration_request`` (everything jobfn
does not map refused by name). The operator's ``RegistrationPolicy`` bounds what one may
run (images, CPU, memory, time, retries, who may register), and is checked again at
every submission, so tightening it also stops older revisions. ``_registered_template``
turns a revision into an ordinary ``JobDefinition``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ._errors import Forbidden, InvalidRequest
from ._retry_rules import RetryRule
from ._settings import RegistrationPolicy

REF = "Ref::"  # AWS's parameter reference in a command
MAX_ATTEMPTS = 10  # AWS's bound
MAX_NODES = 1000  # AWS's bound
MIN_TIMEOUT_SECONDS = 60  # AWS's bound


@dataclass(frozen=True)
class Registration:
    """One revision of a registered definition, as stored and as described back."""

    name: str
    revision: int
    image: str
    command: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    vcpus: Decimal | None = None
    memory_mib: int | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    attempts: int = 1
    retry_rules: tuple[RetryRule, ...] = ()
    timeout_seconds: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    propagate_tags: bool = False
    read_only_root: bool = False
    user: int | None = None
    volumes: tuple[str, ...] = ()
    mount_points: tuple[tuple[str, str, bool], ...] = ()
    """(volume, container path, read only)."""
    roles: Mapping[str, str] = field(default_factory=dict)
    """jobRoleArn / executionRoleArn as given: recorded and described, with no effect here."""
    active: bool = True
    registered_by: str | None = None
    num_nodes: int = 0
    """A multi-node parallel definition's nodes (0: a single container job)."""
    main_node: int = 0
    privileged: bool = False
    """As registered; never granted: refused unless the operator lets it run unprivileged."""
    shared_memory_mib: int | None = None
    """linuxParameters.sharedMemorySize: a memory-backed /dev/shm of this size."""
    tmpfs: tuple[tuple[str, int], ...] = ()
    """linuxParameters.tmpfs: (container path, MiB), memory-backed scratch directories."""
    log_driver: str | None = None
    """logConfiguration.logDriver as registered (only ``awslogs``, AWS's default, is accepted)."""

    # --- the stored record (a ConfigMap's data) and AWS's JobDefinition ----------------
    def container_properties(self) -> dict[str, Any]:
        properties: dict[str, Any] = {"image": self.image, "command": list(self.command)}
        properties["environment"] = [{"name": k, "value": v} for k, v in self.environment.items()]
        requirements = []
        if self.vcpus is not None:
            requirements.append({"type": "VCPU", "value": str(self.vcpus)})
        if self.memory_mib is not None:
            requirements.append({"type": "MEMORY", "value": str(self.memory_mib)})
        properties["resourceRequirements"] = requirements
        properties["readonlyRootFilesystem"] = self.read_only_root
        if self.user is not None:
            properties["user"] = str(self.user)
        properties["volumes"] = [{"name": name} for name in self.volumes]
        properties["mountPoints"] = [
            {"sourceVolume": v, "containerPath": p, "readOnly": ro} for v, p, ro in self.mount_points
        ]
        properties.update(self.roles)
        if self.privileged:
            properties["privileged"] = True
        linux: dict[str, Any] = {}
        if self.shared_memory_mib is not None:
            linux["sharedMemorySize"] = self.shared_memory_mib
        if self.tmpfs:
            linux["tmpfs"] = [{"containerPath": path, "size": size} for path, size in self.tmpfs]
        if linux:
            properties["linuxParameters"] = linux
        if self.log_driver is not None:
            properties["logConfiguration"] = {"logDriver": self.log_driver}
        return properties

    def to_request(self) -> dict[str, Any]:
        """The registration as a RegisterJobDefinition body (what is stored, and read back)."""
        body: dict[str, Any] = {
            "jobDefinitionName": self.name,
            "type": "multinode" if self.num_nodes else "container",
            "parameters": dict(self.parameters),
            "retryStrategy": {
                "attempts": self.attempts,
                "evaluateOnExit": [rule_json(r) for r in self.retry_rules],
            },
            "tags": dict(self.tags),
            "propagateTags": self.propagate_tags,
        }
        if self.timeout_seconds is not None:
            body["timeout"] = {"attemptDurationSeconds": self.timeout_seconds}
        if self.num_nodes:
            body["nodeProperties"] = {
                "numNodes": self.num_nodes,
                "mainNode": self.main_node,
                "nodeRangeProperties": [{"targetNodes": "0:", "container": self.container_properties()}],
            }
        else:
            body["containerProperties"] = self.container_properties()
        return body

    def references(self) -> frozenset[str]:
        """The parameters its command refers to as ``Ref::<name>``."""
        return frozenset(
            arg[len(REF) :] for arg in self.command if arg.startswith(REF) and len(arg) > len(REF)
        )


def rule_json(rule: RetryRule) -> dict[str, str]:
    fields = {"action": rule.action, "onExitCode": rule.on_exit_code, "onReason": rule.on_reason,
              "onStatusReason": rule.on_status_reason}  # fmt: skip
    return {key: value for key, value in fields.items() if value is not None}


# --- the operator's bounds ------------------------------------------------------------------
def check_may_register(policy: RegistrationPolicy, caller: str | None, groups: frozenset[str]) -> None:
    """Refuse unless registration is on and the caller is one the operator allows."""
    if not policy.enabled:
        raise Forbidden("registering job definitions is turned off here; the operator enables it with "
                        "JOBFN_REGISTRATION=on")  # fmt: skip
    if policy.allowed_subjects and not ({caller, *groups} & set(policy.allowed_subjects)):
        raise Forbidden(f"{caller or 'an unauthenticated caller'} may not register job definitions "
                        "(JOBFN_REGISTRATION_SUBJECTS)")  # fmt: skip


def check_within_bounds(registration: Registration, policy: RegistrationPolicy) -> None:
    """Refuse what the operator does not allow, saying what to change; InvalidRequest."""
    problems = []
    if not any(fnmatch.fnmatchcase(registration.image, pattern) for pattern in policy.images):
        allowed = ", ".join(policy.images) or "none (JOBFN_REGISTRATION_IMAGES is empty)"
        problems.append(f"containerProperties.image: {registration.image[:120]!r} is not an image the operator "
                        f"allows; use one matching {allowed}")  # fmt: skip
    if registration.vcpus is not None and registration.vcpus > policy.max_vcpus:
        problems.append(f"containerProperties VCPU: at most {policy.max_vcpus}, not {registration.vcpus}")
    if registration.memory_mib is not None and registration.memory_mib > policy.max_memory_mib:
        problems.append(
            f"containerProperties MEMORY: at most {policy.max_memory_mib} MiB, not {registration.memory_mib}"
        )
    if registration.privileged and policy.privileged != "unprivileged":
        problems.append("containerProperties.privileged: privileged containers are never run; the operator may "
                        "let such definitions run without privileges (JOBFN_REGISTRATION_PRIVILEGED=unprivileged)")  # fmt: skip
    if registration.timeout_seconds is not None and registration.timeout_seconds > policy.max_timeout_seconds:
        problems.append(f"timeout.attemptDurationSeconds: at most {policy.max_timeout_seconds}")
    if problems:
        raise InvalidRequest(
            "job definition outside what the operator allows: " + "; ".join(problems), problems
        )


def select_revision(revisions: Sequence[Registration], revision: int | None) -> Registration | None:
    """The revision asked for, or (none asked) the newest ACTIVE one, as SubmitJob chooses."""
    if revision is not None:
        return next((r for r in revisions if r.revision == revision), None)
    active = [r for r in revisions if r.active]
    return max(active, key=lambda r: r.revision) if active else None
