"""Environment → frozen settings, read and validated once at start-up.

Every problem names the variable at fault, so a misconfigured deployment says what
to fix in its first log line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

from ._contract import DEFINITIONS_PATH_ENV, NAMESPACE_ENV, SIGNATURE_ENV, is_label_value
from ._errors import ConfigurationError

_IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_SIGNATURE = "jobfn"
DEFAULT_AWS_ACCOUNT_ID = "000000000000"

T = TypeVar("T")


@dataclass(frozen=True)
class RegistrationPolicy:
    """What RegisterJobDefinition may register (``_registration`` applies it; all off unless ``enabled``)."""

    enabled: bool = False
    images: tuple[str, ...] = ()
    """Glob patterns an image must match, e.g. ``busybox*`` or ``registry.example.com/team/*``."""
    max_vcpus: Decimal = Decimal(4)
    max_memory_mib: int = 8192
    max_timeout_seconds: int = 86_400
    allowed_subjects: tuple[str, ...] = ()
    """Who may register (users or groups, as a definition's ``allowed_subjects``); empty: anyone."""
    namespace: str | None = None
    """Where the revisions are kept; None: the jobs namespace. A namespace of their own keeps
    the function's write access to ConfigMaps away from the operator's definitions."""
    cpu_request_ratio: Decimal = Decimal(1)
    """The share of a registered definition's vCPUs its containers request from the scheduler
    (``JOBFN_REGISTRATION_CPU_REQUEST_RATIO``, 0 to 1): below 1 overcommits, as engines ask for
    whole vCPUs (TorchX at least 1 per node) that small jobs do not use."""
    privileged: str = "refuse"
    """``privileged: true`` is refused (``refuse``) or registered and run without privileges
    (``unprivileged``: for engines that always ask for it, as Snakemake's executor does)."""


@dataclass(frozen=True)
class Settings:
    """What the function needs to know about its deployment."""

    signature: str
    """Value of the ``app.kubernetes.io/managed-by`` label on every job (``JOB_SIGNATURE``)."""
    namespace: str
    """Namespace jobs are created in (``JOB_NAMESPACE``; in-cluster default: the pod's own)."""
    definitions_path: Path | None
    """YAML file listing the job definitions (``JOB_DEFINITIONS_CONFIG_PATH``)."""
    auth: str = "none"
    """Caller authentication: ``none`` or ``tokenreview`` (``JOBFN_AUTH``)."""
    event_audience: str | None = None
    """The audience a CloudEvent's bearer token must be issued for (``JOBFN_EVENT_AUDIENCE``):
    Knative Eventing's OIDC tokens, the audience a Trigger's ``subscriber.audience`` names.
    None: events carry tokens for the API server, as REST callers do."""
    max_body_bytes: int = 1 << 20
    """Requests with a larger body are refused with 413 (``JOBFN_MAX_BODY_BYTES``)."""
    max_in_flight: int = 0
    """Requests beyond this many at once are answered 429; 0 is no cap (``JOBFN_MAX_IN_FLIGHT``)."""
    reload_interval_seconds: float = 1.0
    """How often the definitions file is checked for edits (``JOBFN_RELOAD_INTERVAL_SECONDS``)."""
    api_timeout_seconds: float = 10.0
    """Timeout of each Kubernetes API request (``JOBFN_API_TIMEOUT_SECONDS``)."""
    server_threads: int = 0
    """Threads serving requests (functions-framework's ``THREADS``; 0: its default)."""
    log_level: str = "INFO"
    """Python log level name (``JOBFN_LOG_LEVEL``)."""
    aws_access_key_id: str | None = None
    """When set, AWS Batch API requests must be SigV4-signed with this key (``JOBFN_AWS_ACCESS_KEY_ID``)."""
    aws_secret_access_key: str | None = field(default=None, repr=False)
    """The access key's secret (``JOBFN_AWS_SECRET_ACCESS_KEY``); never logged or shown."""
    aws_account_id: str = DEFAULT_AWS_ACCOUNT_ID
    """The account in the ARNs the AWS Batch API answers with (``JOBFN_AWS_ACCOUNT_ID``)."""
    registration: RegistrationPolicy = field(default_factory=RegistrationPolicy)
    """What RegisterJobDefinition may register (``JOBFN_REGISTRATION*``; off by default)."""
    gate_image: str = "busybox:1.36"
    """The image of the init container counting attempts and holding pods for a decision
    (``JOBFN_GATE_IMAGE``): any image with a POSIX sh, sed and sleep."""


def _parse(env: Mapping[str, str], name: str, convert: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return convert(raw)
    except ValueError as error:
        raise ConfigurationError(f"{name}={raw!r} is invalid: {error}") from None


def non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be more than zero")
    return value


def read_signature(env: Mapping[str, str]) -> str:
    """``JOB_SIGNATURE``, validated as a label value."""
    signature = env.get(SIGNATURE_ENV) or DEFAULT_SIGNATURE
    if not is_label_value(signature):
        raise ConfigurationError(
            f"{SIGNATURE_ENV}={signature!r} is not a valid label value "
            "(at most 63 characters: letters, digits, '-', '_', '.')"
        )
    return signature


def read_namespace(env: Mapping[str, str]) -> str:
    """``JOB_NAMESPACE``, else the pod's own namespace, else ``default``."""
    namespace = env.get(NAMESPACE_ENV)
    if not namespace and _IN_CLUSTER_NAMESPACE_FILE.exists():
        namespace = _IN_CLUSTER_NAMESPACE_FILE.read_text().strip()
    return namespace or "default"


def read_definitions_path(env: Mapping[str, str]) -> Path | None:
    """``JOB_DEFINITIONS_CONFIG_PATH`` as a path, or None when unset."""
    raw = env.get(DEFINITIONS_PATH_ENV)
    return Path(raw) if raw else None


def _names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def positive_decimal(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not value.is_finite() or value <= 0:
        raise ValueError("must be more than zero")
    return value


def read_registration_policy(env: Mapping[str, str]) -> RegistrationPolicy:
    """``JOBFN_REGISTRATION`` (on/off) and the bounds of what may be registered."""
    switch = env.get("JOBFN_REGISTRATION", "off").lower()
    if switch not in ("on", "off"):
        raise ConfigurationError(f"JOBFN_REGISTRATION={switch[:20]!r} is invalid: use 'on' or 'off'")
    images = _names(env.get("JOBFN_REGISTRATION_IMAGES", ""))
    if switch == "on" and not images:
        raise ConfigurationError(
            "JOBFN_REGISTRATION=on needs JOBFN_REGISTRATION_IMAGES: the image patterns registered "
            "definitions may run (for example 'busybox*,registry.example.com/team/*')"
        )
    defaults = RegistrationPolicy()
    return RegistrationPolicy(
        enabled=switch == "on",
        images=images,
        max_vcpus=_parse(env, "JOBFN_REGISTRATION_MAX_VCPUS", positive_decimal, defaults.max_vcpus),
        max_memory_mib=_parse(
            env, "JOBFN_REGISTRATION_MAX_MEMORY_MIB", non_negative_int, defaults.max_memory_mib
        ),
        max_timeout_seconds=_parse(
            env, "JOBFN_REGISTRATION_MAX_TIMEOUT_SECONDS", non_negative_int, defaults.max_timeout_seconds
        ),
        allowed_subjects=_names(env.get("JOBFN_REGISTRATION_SUBJECTS", "")),
        namespace=env.get("JOBFN_REGISTRATION_NAMESPACE") or None,
        privileged=_choice(env, "JOBFN_REGISTRATION_PRIVILEGED", ("refuse", "unprivileged")),
        cpu_request_ratio=_parse(
            env, "JOBFN_REGISTRATION_CPU_REQUEST_RATIO", _ratio, defaults.cpu_request_ratio
        ),
    )


def _ratio(raw: str) -> Decimal:
    value = positive_decimal(raw)
    if value > 1:
        raise ValueError("must be at most 1")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first when unset); ConfigurationError naming them otherwise."""
    value = (env.get(name) or choices[0]).lower()
    if value not in choices:
        raise ConfigurationError(f"{name}={value[:20]!r} is invalid: use {' or '.join(map(repr, choices))}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the function's settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    auth = env.get("JOBFN_AUTH", "none").lower()
    if auth not in ("none", "tokenreview"):
        raise ConfigurationError(f"JOBFN_AUTH={auth!r} is invalid: use 'none' or 'tokenreview'")
    log_level = env.get("JOBFN_LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigurationError(f"JOBFN_LOG_LEVEL={log_level!r} is invalid")
    event_audience = env.get("JOBFN_EVENT_AUDIENCE") or None
    if event_audience is not None:
        if auth != "tokenreview":
            raise ConfigurationError(
                "JOBFN_EVENT_AUDIENCE is set but JOBFN_AUTH is not 'tokenreview': tokens are only checked then"
            )
        if len(event_audience) > 256 or any(c.isspace() or not c.isprintable() for c in event_audience):
            raise ConfigurationError(
                f"JOBFN_EVENT_AUDIENCE={event_audience[:40]!r} is invalid: at most 256 printable "
                "characters, no spaces"
            )
    access_key_id = env.get("JOBFN_AWS_ACCESS_KEY_ID") or None
    secret_access_key = env.get("JOBFN_AWS_SECRET_ACCESS_KEY") or None
    if (access_key_id is None) != (secret_access_key is None):
        missing = "JOBFN_AWS_SECRET_ACCESS_KEY" if secret_access_key is None else "JOBFN_AWS_ACCESS_KEY_ID"
        raise ConfigurationError(f"{missing} is not set: set both AWS credentials variables or neither")
    account_id = env.get("JOBFN_AWS_ACCOUNT_ID") or DEFAULT_AWS_ACCOUNT_ID
    if not (len(account_id) == 12 and account_id.isdigit()):
        raise ConfigurationError(f"JOBFN_AWS_ACCOUNT_ID={account_id[:40]!r} is invalid: use 12 digits")
    return Settings(
        signature=read_signature(env),
        namespace=read_namespace(env),
        definitions_path=read_definitions_path(env),
        auth=auth,
        event_audience=event_audience,
        max_body_bytes=_parse(env, "JOBFN_MAX_BODY_BYTES", non_negative_int, 1 << 20),
        max_in_flight=_parse(env, "JOBFN_MAX_IN_FLIGHT", non_negative_int, 0),
        reload_interval_seconds=_parse(env, "JOBFN_RELOAD_INTERVAL_SECONDS", positive_float, 1.0),
        api_timeout_seconds=_parse(env, "JOBFN_API_TIMEOUT_SECONDS", positive_float, 10.0),
        server_threads=_parse(env, "THREADS", non_negative_int, 0),
        log_level=log_level,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_account_id=account_id,
        registration=read_registration_policy(env),
        gate_image=env.get("JOBFN_GATE_IMAGE") or Settings.gate_image,
    )
