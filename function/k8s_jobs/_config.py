"""k8s-jobs' ``JobManagerFactory`` and ``JobDefinition``: managers configured from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._contract import DEFINITIONS_PATH_ENV, NAMESPACE_ENV, SIGNATURE_ENV
from .._errors import ConfigurationError
from ._manager import JobManager
from ._models import library_api_client
from ._register import JobDefinitionsRegister, JobSigner, ReloadingJobDefinitionsRegister
from ._spec import ConfigMapSpecSource, JobSpecSource, YamlFileSpecSource, YamlStringSpecSource

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


@dataclass
class JobDefinition:
    """One entry of k8s-jobs' definitions file: a name and where its spec is."""

    name: str
    spec: str | None = None
    """The spec inline, as YAML."""
    spec_path: str | None = None
    """Path of a spec file."""
    spec_config_map_name: str | None = None
    """A ConfigMap holding the spec under a key of the same name..."""
    spec_config_map_namespace: str | None = None
    """...and its namespace."""

    def spec_source(self) -> JobSpecSource:
        if self.spec:
            return YamlStringSpecSource(self.spec)
        if self.spec_path:
            return YamlFileSpecSource(self.spec_path)
        if self.spec_config_map_name and self.spec_config_map_namespace:
            return ConfigMapSpecSource(self.spec_config_map_name, self.spec_config_map_namespace)
        raise ValueError("All Spec variables are empty or incomplete")


class JobManagerFactory:
    """Builds managers that share one namespace, signature, register and API client."""

    JOB_SIGNATURE_ENV_VAR = SIGNATURE_ENV
    JOB_NAMESPACE_ENV_VAR = NAMESPACE_ENV
    JOB_DEFINITIONS_CONFIG_PATH_ENV_VAR = DEFINITIONS_PATH_ENV

    def __init__(
        self,
        namespace: str,
        signature: str,
        register: JobDefinitionsRegister,
        api_client: ApiClient | None = None,
    ) -> None:
        self.namespace = namespace
        self.signature = signature
        self.register = register
        self._api_client = api_client

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobManagerFactory:
        """From ``JOB_SIGNATURE``, ``JOB_NAMESPACE`` and ``JOB_DEFINITIONS_CONFIG_PATH``, all required."""
        env = os.environ if env is None else env
        missing = [name for name in (SIGNATURE_ENV, NAMESPACE_ENV, DEFINITIONS_PATH_ENV) if not env.get(name)]
        if missing:
            raise ConfigurationError(f"{', '.join(missing)} not set: the k8s-jobs factory needs all three")
        return cls.from_vars(env[SIGNATURE_ENV], env[NAMESPACE_ENV], env[DEFINITIONS_PATH_ENV])

    @classmethod
    def from_vars(cls, signature: str, namespace: str, job_definitions_file_path: str) -> JobManagerFactory:
        """A factory over the definitions file at ``job_definitions_file_path``, re-read when it changes.

        Nothing is read or connected until the first manager is used.
        """
        return cls(namespace, signature, ReloadingJobDefinitionsRegister(job_definitions_file_path))

    def manager(self) -> JobManager:
        """A manager on this factory's namespace, signature and definitions."""
        if self._api_client is None:
            self._api_client = library_api_client()
        return JobManager(self.namespace, JobSigner(self.signature), self.register, self._api_client)
