"""The one exception hierarchy of jobfn.

Every error jobfn raises on purpose derives from ``JobfnError``. Each class carries
the HTTP status the front doors answer with, so the mapping lives in one table
(``http_status``) instead of being re-decided per route. Kubernetes client errors
are translated into this hierarchy once, at the boundary (``_kube``), which keeps the
API server's own ``Status`` (its ``reason`` and ``details.causes``) on the error.

    JobfnError
    ├── RequestError                    the caller's mistake (4xx)
    │   ├── InvalidRequest              400: malformed body, bad field
    │   │   └── InvalidArguments        400: arguments fail the definition's schema
    │   ├── Unauthenticated             401
    │   ├── Forbidden                   403
    │   ├── NotFound                    404
    │   │   ├── DefinitionNotFound
    │   │   └── JobNotFound
    │   ├── MethodNotAllowed            405
    │   ├── Conflict                    409: idempotency key reuse, name clash, stale write
    │   │   ├── AlreadyExists           the API server has an object of that name
    │   │   └── StaleWrite              a precondition (uid, resourceVersion) no longer holds
    │   ├── PayloadTooLarge             413
    │   ├── UnsupportedMediaType        415
    │   └── TooManyRequests             429: a definition's cap on active jobs, overload
    ├── Unavailable                     503: the Kubernetes API cannot be reached
    │   └── DefinitionsNotLoaded        503: no definitions loaded yet (file missing, unreadable)
    ├── DefinitionError                 the operator's definitions file or template is wrong
    └── KubernetesError                 the API answered something jobfn did not expect
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiCause:
    """One problem the API server names in a refusal (``Status.details.causes[]``)."""

    field: str
    reason: str
    message: str


@dataclass(frozen=True)
class ApiStatus:
    """The API server's own account of a failed request: its ``Status`` object."""

    code: int
    reason: str
    """``AlreadyExists``, ``Conflict``, ``Invalid``, ``NotFound``, ... ('' when none was sent)."""
    message: str
    causes: tuple[ApiCause, ...] = ()


class JobfnError(Exception):
    """Root of every error jobfn raises on purpose."""

    status = 500
    api_status: ApiStatus | None = None
    """Set on errors the Kubernetes boundary raised: what the API server answered."""
    #: Short machine-readable name, stable across releases (used in JSON error bodies).
    code = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestError(JobfnError):
    """Raised when a request cannot be served as asked; the caller can fix it."""

    status = 400
    code = "BadRequest"


class InvalidRequest(RequestError):
    """Raised when a request body or field is malformed or out of range; lists every problem."""

    code = "InvalidRequest"

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems) or [message]
        super().__init__(message)


class InvalidArguments(InvalidRequest):
    """Raised when arguments fail a definition's parameter schema; lists every problem."""

    code = "InvalidArguments"


class Unauthenticated(RequestError):
    """Raised when a request carries no valid credentials and authentication is on."""

    status = 401
    code = "Unauthenticated"


class Forbidden(RequestError):
    """Raised when an authenticated caller may not do what it asked."""

    status = 403
    code = "Forbidden"


class NotFound(RequestError):
    """Raised when a named thing does not exist."""

    status = 404
    code = "NotFound"


class DefinitionNotFound(NotFound):
    """Raised when a submission names a job definition that is not loaded."""

    code = "DefinitionNotFound"


class JobNotFound(NotFound):
    """Raised when a job is not found among the jobs carrying this deployment's signature."""

    code = "JobNotFound"


class MethodNotAllowed(RequestError):
    """Raised when a route exists but not for the request's method."""

    status = 405
    code = "MethodNotAllowed"

    def __init__(self, message: str, allowed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.allowed = list(allowed)


class Conflict(RequestError):
    """Raised when a request clashes with existing state (idempotency key reuse, stale write)."""

    status = 409
    code = "Conflict"


class AlreadyExists(Conflict):
    """Raised when an object of the name being created already exists."""


class StaleWrite(Conflict):
    """Raised when a write's precondition (uid, resourceVersion) no longer holds: the object changed."""


class PayloadTooLarge(RequestError):
    """Raised when a request body is larger than the configured limit."""

    status = 413
    code = "PayloadTooLarge"


class UnsupportedMediaType(RequestError):
    """Raised when a request body is not in a content type the route accepts."""

    status = 415
    code = "UnsupportedMediaType"


class TooManyRequests(RequestError):
    """Raised when a cap is reached; the caller should retry after ``retry_after`` seconds."""

    status = 429
    code = "TooManyRequests"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(JobfnError):
    """Raised when the Kubernetes API cannot be reached or is overloaded; retry later."""

    status = 503
    code = "ServiceUnavailable"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DefinitionsNotLoaded(Unavailable):
    """Raised when no job definitions have been loaded yet (the file is missing or unreadable).

    The function is not ready rather than broken: the file may appear (a ConfigMap
    mounted late, an edit fixed), so every door answers 503 with Retry-After. The
    message never names the file's path; the log does.
    """


class DefinitionError(JobfnError):
    """Raised when the definitions file or a definition's template is invalid.

    This is the operator's mistake, not the caller's: the function keeps serving the
    last good definitions and reports the problem.
    """

    code = "DefinitionError"


class KubernetesError(JobfnError):
    """Raised when the Kubernetes API answers something jobfn did not expect."""

    status = 502
    code = "KubernetesError"


class ConfigurationError(JobfnError):
    """Raised at start-up when an environment variable or flag is missing or invalid."""

    code = "ConfigurationError"


def http_status(error: BaseException) -> int:
    """The HTTP status every front door answers ``error`` with (500 for anything unplanned)."""
    return error.status if isinstance(error, JobfnError) else 500
