"""k8s-jobs' ``JobManager``: its calls and return types, answered by jobfn's ``JobManager``.

Every call goes through jobfn's core (``submit`` for creating, so templating, policy,
the labels and annotations contract and the delete preconditions all apply); this
class only converts between the core's JSON and the client models k8s-jobs returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from .. import _status as job_status
from .._submission import Submission
from ._models import Manifest, library_api_client, to_manifest, to_v1_job
from ._register import JobDefinitionsRegister, JobSigner, string_labels

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Job

    from .._manager import JobManager as CoreJobManager

logger = logging.getLogger(__name__)

PreCreate = Callable[["V1Job"], None]


class JobManager:
    """Creates, finds, reads, deletes jobs of one signature and reports their status and logs."""

    class JobStatus(Enum):
        RUNNING = "Running"
        COMPLETE = "Complete"
        FAILED = "Failed"

    LogsByPodAndContainer = dict[str, dict[str, list[str]]]

    def __init__(
        self,
        namespace: str,
        signer: JobSigner,
        register: JobDefinitionsRegister,
        api_client: ApiClient | None = None,
    ) -> None:
        from .._kube import KubeApi
        from .._manager import JobManager as CoreJobManager  # loads the Kubernetes client

        self.namespace = namespace
        self.signer = signer
        self.register = register
        self.api_client = api_client or library_api_client()
        self._api = KubeApi(self.api_client)
        self._definitions = register.definitions()
        self.jobfn_manager: CoreJobManager = CoreJobManager(
            namespace, signer.contract_signer, self._definitions, self._api
        )
        """jobfn's own manager on the same jobs: the native API (``submit``, ``describe_job``, ...)."""

    def create_job(
        self,
        job_definition_name: str,
        template_args: Mapping[str, Any] | None = None,
        pre_create: PreCreate | None = None,
    ) -> str:
        """Create a job of a definition and return its name.

        ``pre_create`` may change the ``V1Job`` (signed, as it will be sent) in place.
        As k8s-jobs' Jinja rendering did, arguments the template does not use are
        left out; a template variable without an argument is InvalidArguments, and an
        unknown definition NotFoundException.
        """
        taken = self._definitions.current().get(job_definition_name).parameters
        arguments = {name: value for name, value in (template_args or {}).items() if name in taken}
        submission = Submission(job_definition_name, arguments)
        return self._manager_with(pre_create).submit(submission).name

    def _manager_with(self, pre_create: PreCreate | None) -> CoreJobManager:
        if pre_create is None:
            return self.jobfn_manager
        from .._manager import JobManager as CoreJobManager

        def on_model(job: Manifest) -> Manifest:
            model = to_v1_job(job)
            pre_create(model)
            return to_manifest(model)

        return CoreJobManager(
            self.namespace,
            self.signer.contract_signer,
            self._definitions,
            self._api,
            pre_create=on_model,
        )

    def delete_job(self, job: V1Job) -> bool:
        """Delete a job and its pods; False when it is gone, or changed since it was read.

        The delete carries the job's uid and resourceVersion, so a newer job of the same
        name, or one whose deletion time was changed meanwhile, is not deleted in its
        place. A job given by name alone is deleted as it is now.
        """
        manifest = to_manifest(job)
        metadata = manifest.get("metadata") or {}
        if not (metadata.get("uid") and metadata.get("resourceVersion")):
            manifest = self.jobfn_manager.read_job(metadata["name"])
        return self.jobfn_manager.delete_job(manifest)

    def fetch_jobs(self, job_definition_name: str | None = None, **extra_labels: Any) -> Iterator[V1Job]:
        """Every job of this signature (of one definition, with these labels), page by page."""
        for manifest in self.fetch_manifests(job_definition_name, **extra_labels):
            yield to_v1_job(manifest)

    def fetch_manifests(
        self, job_definition_name: str | None = None, **extra_labels: Any
    ) -> Iterator[Manifest]:
        """``fetch_jobs`` as the API's JSON, without building client models."""
        labels = string_labels(extra_labels) or None
        yield from self.jobfn_manager.fetch_jobs(job_definition_name, labels=labels)

    def list_jobs(self, job_definition_name: str | None = None, **extra_labels: Any) -> list[V1Job]:
        return list(self.fetch_jobs(job_definition_name, **extra_labels))

    def read_job(self, job_name: str) -> V1Job:
        """The job, status included; NotFoundException unless it exists and carries this signature."""
        return to_v1_job(self.jobfn_manager.read_job(job_name))

    def job_logs(self, job_name: str, limit: int | None = 200) -> LogsByPodAndContainer:
        """The last ``limit`` lines of each container of each pod: ``{pod: {container: [lines]}}``.

        Each container's log is capped at jobfn's limit (1 MiB), not k8s-jobs' 1 GiB.
        """
        logs: dict[str, dict[str, list[str]]] = {}
        for log in self.jobfn_manager.job_logs(job_name, tail_lines=limit):
            if log.truncated:
                logger.warning("logs of pod %s of job %s were cut short", log.pod, job_name)
            logs.setdefault(log.pod, {})[log.container] = log.text.split("\n")
        return logs

    def job_status(self, job: str | V1Job) -> JobManager.JobStatus:
        """RUNNING until the Job controller finishes the job, then COMPLETE or FAILED."""
        manifest = self.jobfn_manager.read_job(job) if isinstance(job, str) else to_manifest(job)
        return status_of(manifest)

    def job_is_finished(self, job: str | V1Job) -> bool:
        return self.job_status(job) is not JobManager.JobStatus.RUNNING


def status_of(manifest: Mapping[str, Any]) -> JobManager.JobStatus:
    """k8s-jobs' three statuses from jobfn's state model."""
    if not job_status.is_terminal(manifest):
        return JobManager.JobStatus.RUNNING
    state, _ = job_status.job_state(manifest)
    return JobManager.JobStatus.COMPLETE if state == job_status.SUCCEEDED else JobManager.JobStatus.FAILED
