"""k8s-jobs' ``JobSigner`` and job definition registers, over jobfn's contract and definitions.

A register maps a definition name to a ``JobGenerator`` (k8s-jobs' view); jobfn's
core asks for definitions instead, so each register also offers ``definitions()``:
the same definitions as jobfn's ``JobDefinitions`` (validation, policy and all).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import _contract as contract
from .._definitions import JobDefinition, JobDefinitions
from .._definitions_file import DefinitionsFile
from .._errors import DefinitionNotFound, NotFound
from .._templating import Template
from ._models import library_api_client
from ._spec import JobGenerator, JobSpecSource, read_config_map

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Job

#: k8s-jobs' exception for a definition or job that does not exist. jobfn's own
#: ``NotFound`` (``DefinitionNotFound``, ``JobNotFound``) is it, so either name catches both.
NotFoundException = NotFound


class DefinitionsSource(Protocol):
    """What jobfn's core submits from: the definitions as they are now."""

    def current(self) -> JobDefinitions: ...


class JobSigner:
    """Marks jobs as created by one caller (``app.kubernetes.io/managed-by``) and selects them."""

    LABEL_KEY = contract.MANAGED_BY_LABEL
    JOB_DEFINITION_NAME_KEY = contract.DEFINITION_LABEL

    def __init__(self, signature: str) -> None:
        self.contract_signer = contract.JobSigner(signature)
        """jobfn's signer for the same signature (refuses one that is no valid label value)."""
        self.signature = signature

    def sign(self, job: V1Job | dict[str, Any], job_definition_name: str | None = None) -> None:
        """Set the signature (and definition) labels on a ``V1Job`` or a Job dict, in place."""
        if isinstance(job, dict):
            self.contract_signer.sign(job, job_definition_name)
            return
        from kubernetes.client import V1ObjectMeta

        if job.metadata is None:
            job.metadata = V1ObjectMeta()
        labels = dict(job.metadata.labels or {})
        self.contract_signer.sign({"metadata": {"labels": labels}}, job_definition_name)
        job.metadata.labels = labels

    def label_selector(self, job_definition_name: str | None = None, **extra_labels: Any) -> str:
        """The selector of the jobs ``sign`` marked, narrowed by definition and extra labels."""
        return self.contract_signer.label_selector(job_definition_name, string_labels(extra_labels))


def string_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    """k8s-jobs took any value for an extra label (``another=2``); label values are strings."""
    return {key: str(value) for key, value in labels.items()}


class JobDefinitionsRegister(ABC):
    """Maps job definition names to generators."""

    @abstractmethod
    def get_generator(self, job_definition_name: str) -> JobGenerator:
        """The generator of a definition; raises NotFoundException when there is none."""

    def definitions(self) -> DefinitionsSource:
        """The register's definitions as jobfn's core submits from them."""
        return _RegisteredDefinitions(self)


class _RegisteredDefinitions(JobDefinitions):
    """Definitions built on demand from a register's generators, as they are when asked."""

    def __init__(self, register: JobDefinitionsRegister) -> None:
        super().__init__()
        self._register = register

    def get(self, name: str) -> JobDefinition:
        return self._register.get_generator(name).definition(name)


class StaticJobDefinitionsRegister(JobDefinitionsRegister):
    """A fixed mapping of definition names to generators."""

    def __init__(self, job_generators: Mapping[str, JobGenerator] | None = None) -> None:
        self.job_generators = dict(job_generators or {})

    def get_generator(self, job_definition_name: str) -> JobGenerator:
        try:
            return self.job_generators[job_definition_name]
        except KeyError:
            known = ", ".join(sorted(self.job_generators)) or "none"
            raise DefinitionNotFound(
                f"no job definition named {job_definition_name[:80]!r} (defined: {known})"
            ) from None


class ReloadingJobDefinitionsRegister(JobDefinitionsRegister):
    """The definitions file (k8s-jobs' list, or jobfn's ``definitions:``), re-read when it changes.

    It is jobfn's ``DefinitionsFile``: a broken edit keeps the last good definitions,
    and a definition may declare jobfn's typed parameters, retention and the rest.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        api_client: ApiClient | None = None,
        reload_interval_seconds: float = 1.0,
    ) -> None:
        self._api_client = api_client
        self.file = DefinitionsFile(
            Path(path), reload_interval_seconds, read_config_map=self._read_config_map
        )

    def _read_config_map(self, namespace: str, name: str, key: str) -> str:
        if self._api_client is None:
            self._api_client = library_api_client()
        return read_config_map(self._api_client, namespace, name, key)

    def get_generator(self, job_definition_name: str) -> JobGenerator:
        return JobGenerator(_LoadedSpecSource(self.file.current().get(job_definition_name)))

    def definitions(self) -> DefinitionsSource:
        return self.file

    @property
    def generators(self) -> dict[str, JobGenerator]:
        """Every definition's generator, as the file is now."""
        return {d.name: JobGenerator(_LoadedSpecSource(d)) for d in self.file.current()}


class _LoadedSpecSource(JobSpecSource):
    """The template of a definition already loaded from the definitions file."""

    def __init__(self, loaded: JobDefinition) -> None:
        self._loaded = loaded

    def template_text(self) -> str:
        raise NotImplementedError("a loaded definition keeps its parsed template, not its text")

    def template(self) -> Template:
        return self._loaded.template

    def definition(self, name: str) -> JobDefinition:
        return self._loaded
