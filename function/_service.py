"""The function's process-wide parts: settings, definitions, manager, authentication, limits.

A scale-to-zero function pays its start-up on every cold start, so importing this
module does nothing slow: the Kubernetes client (about a second to import) and the
manager are built by the first request that needs them, once, under a lock. The
definitions file is read on first use too and re-read when it changes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import flask

from ._auth import Caller, TokenAuthenticator
from ._contract import DEFINITIONS_PATH_ENV
from ._definitions import JobDefinition, JobDefinitions
from ._definitions_file import DefinitionsFile
from ._errors import DefinitionsNotLoaded, InvalidRequest, Unavailable, http_status
from ._kueue import QueueSnapshot
from ._logs import add_request_fields
from ._metrics import SUBMISSIONS, UNKNOWN_DEFINITION, submission_outcome
from ._queues import JobQueue
from ._settings import Settings
from ._submission import JobView, Submission
from ._web import InFlightLimit

if TYPE_CHECKING:
    from ._kube import KubeApi
    from ._manager import JobManager
    from ._registration import Registration
    from ._registry import RegisteredDefinitions


class _NoDefinitionsFile:
    """Stands in for the definitions file when none is configured: every use says so."""

    def current(self) -> JobDefinitions:
        raise DefinitionsNotLoaded(f"no job definitions are loaded: {DEFINITIONS_PATH_ENV} is not set")


class Service:
    """Everything a request may need beyond the request itself."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.in_flight = InFlightLimit(settings.max_in_flight)
        self._lock = threading.Lock()
        self._api: KubeApi | None = None
        self._manager: JobManager | None = None
        self._authenticators: dict[str | None, TokenAuthenticator] = {}  # by audience
        self._registry: RegisteredDefinitions | None = None
        path = settings.definitions_path
        self._definitions: DefinitionsFile | _NoDefinitionsFile = (
            DefinitionsFile(path, settings.reload_interval_seconds, read_config_map=self._read_config_map)
            if path is not None
            else _NoDefinitionsFile()
        )

    @property
    def event_source(self) -> str:
        """The ``source`` of the CloudEvents the function sends."""
        return f"/jobfn/namespaces/{self.settings.namespace}"

    def definitions(self) -> JobDefinitions:
        """The current definitions; DefinitionsNotLoaded (503) while none has loaded."""
        return self._definitions.current()

    def definitions_problem(self) -> str | None:
        """Why the last edit of the definitions file was refused, while the last good set is served."""
        return getattr(self._definitions, "last_error", None)

    def api(self) -> KubeApi:
        """The Kubernetes boundary, built on first use; Unavailable while it cannot be configured."""
        api = self._api
        if api is not None:
            return api
        with self._lock:
            if self._api is None:
                from ._kube import KubeApi

                try:
                    # A connection per serving thread: past the pool's size each request
                    # beyond it opens, then closes, a fresh TLS connection.
                    self._api = KubeApi.from_environment(
                        max(32, self.settings.server_threads), self.settings.api_timeout_seconds
                    )
                except Exception as error:  # kubeconfig missing or unreadable: not ready yet
                    raise Unavailable(f"the Kubernetes client cannot be configured: {error}") from error
            return self._api

    def manager(self) -> JobManager:
        """The job manager, built on first use; Unavailable while the client cannot be configured."""
        manager = self._manager
        if manager is not None:
            return manager
        api = self.api()
        with self._lock:
            if self._manager is None:
                from ._contract import JobSigner
                from ._manager import JobManager

                self._manager = JobManager(
                    namespace=self.settings.namespace,
                    signer=JobSigner(self.settings.signature),
                    definitions=self._definitions,
                    api=api,
                    gate_image=self.settings.gate_image,
                )
            return self._manager

    # --- registered definitions (AWS Batch's RegisterJobDefinition) ---------------------------
    def registry(self) -> RegisteredDefinitions | None:
        """The registered definitions, when the operator turned registration on; else None."""
        if not self.settings.registration.enabled:
            return None
        registry = self._registry
        if registry is None:
            api = self.api()
            with self._lock:
                if self._registry is None:
                    from ._contract import JobSigner
                    from ._registry import RegisteredDefinitions

                    namespace = self.settings.registration.namespace or self.settings.namespace
                    self._registry = RegisteredDefinitions(api, namespace, JobSigner(self.settings.signature))
                registry = self._registry
        return registry

    def register(self, registration: Registration, caller: str | None) -> Registration:
        """Store a new revision, if the operator allows this caller and what it runs."""
        from ._registration import check_may_register, check_within_bounds  # not on the cold start

        policy = self.settings.registration
        check_may_register(policy, caller, frozenset())
        if registration.name in self.definitions().names():
            raise InvalidRequest(
                f"jobDefinitionName: {registration.name!r} is a definition of the operator's definitions "
                "file, which wins on a name clash; register under another name"
            )
        check_within_bounds(registration, policy)
        registry = self.registry()
        assert registry is not None  # check_may_register refused unless registration is on
        return registry.register(registration)

    def registration(self, name: str, revision: int | None) -> Registration | None:
        """Revision ``revision`` (None: the newest ACTIVE) of registered definition ``name``; None
        when the definitions file has that name (it wins) or none is registered."""
        from ._registration import select_revision  # not on the cold start

        registry = self.registry()
        if registry is None or name in self.definitions().names():
            return None
        return select_revision(registry.revisions(name), revision)

    def registered_definition(self, name: str, revision: int | None) -> JobDefinition | None:
        """``registration(name, revision)`` as the definition a submission follows."""
        from ._registered_template import as_definition  # not on the cold start

        chosen = self.registration(name, revision)
        if chosen is None:
            return None
        if not chosen.active:
            raise InvalidRequest(f"job definition {name}:{chosen.revision} is INACTIVE (deregistered)")
        return as_definition(chosen, self.settings.registration)

    def queue_snapshot(self, queue: JobQueue) -> QueueSnapshot:
        """What Kueue reports of a queue's LocalQueue now; InvalidRequest for a queue without one."""
        if queue.kueue_queue is None:
            raise InvalidRequest(
                f"queue '{queue.name}' is not backed by Kueue (kueue_queue), so its jobs have no queue "
                "order: they wait for a node; ListJobs with jobStatus RUNNABLE lists them"
            )
        return self.manager().kueue.snapshot(queue.kueue_queue)

    def submit(self, submission: Submission, door: str, definition: JobDefinition | None = None) -> JobView:
        """Submit through the manager, counting the outcome per definition and front door.
        ``definition``: a registered definition to follow instead of the file's."""
        try:
            view = self.manager().submit(submission, definition)
        except Exception as error:
            outcome = submission_outcome(http_status(error))
            SUBMISSIONS.labels(self._definition_label(submission.definition), door, outcome).inc()
            raise
        outcome = submission_outcome(200, created=view.created_now)
        SUBMISSIONS.labels(self._definition_label(view.definition), door, outcome).inc()
        add_request_fields(
            job=view.name, definition=view.definition, job_created=view.created_now, caller=submission.caller
        )
        return view

    def _definition_label(self, name: str) -> str:
        # Only names of loaded definitions become label values: callers cannot add series.
        try:
            return name if name in self.definitions().names() else UNKNOWN_DEFINITION
        except DefinitionsNotLoaded:
            return UNKNOWN_DEFINITION

    def _read_config_map(self, namespace: str, name: str, key: str) -> str:
        from ._config_maps import ConfigMapReader

        return ConfigMapReader(self.api(), self.settings.namespace)(namespace, name, key)

    def caller(self, request: flask.Request, audience: str | None = None) -> Caller | None:
        """Who is calling (None when authentication is off); Unauthenticated when unknown, or
        when an ``audience`` is given and the token was not issued for it (None: the API
        server's own audience, as ``kubectl create token`` issues by default)."""
        if self.settings.auth == "none":
            return None
        authenticator = self._authenticators.get(audience)
        if authenticator is None:
            api = self.api()
            with self._lock:
                if audience not in self._authenticators:
                    from ._token_review import TokenReviewer

                    review = TokenReviewer(api)
                    self._authenticators[audience] = (
                        TokenAuthenticator(review)
                        if audience is None
                        else TokenAuthenticator(
                            lambda token: review(token, audience),
                            refusal=f"the bearer token is not valid for the audience {audience!r} "
                            "(expired, revoked, or issued for another audience)",
                        )
                    )
                authenticator = self._authenticators[audience]
        return authenticator.caller(request.headers.get("Authorization"))

    def check_ready(self) -> int:
        """The number of loaded definitions; Unavailable unless they are loaded and the API answers."""
        try:
            count = len(self.definitions())
        except DefinitionsNotLoaded as error:
            raise Unavailable(f"not ready: {error.message}", retry_after=5) from None
        self.manager().check_reachable()
        return count
