"""k8s-jobs' ``JobManagerFactory``: a manager configured from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ._config_maps import ConfigMapReader
from ._contract import DEFINITIONS_PATH_ENV, NAMESPACE_ENV, SIGNATURE_ENV, JobSigner
from ._definitions_file import DefinitionsFile
from ._errors import ConfigurationError
from ._kube import KubeApi
from ._manager import JobManager, PreCreateHook
from ._settings import read_definitions_path, read_namespace, read_signature


class JobManagerFactory:
    """Builds ``JobManager`` s that share one hot-reloaded definitions file and API client."""

    # k8s-jobs' attribute names for the contract's variables, whose spelling lives in _contract.
    JOB_SIGNATURE_ENV_VAR = SIGNATURE_ENV
    JOB_NAMESPACE_ENV_VAR = NAMESPACE_ENV
    JOB_DEFINITIONS_CONFIG_PATH_ENV_VAR = DEFINITIONS_PATH_ENV

    def __init__(
        self,
        namespace: str,
        signature: str,
        definitions_path: Path,
        reload_interval_seconds: float = 1.0,
        pre_create: PreCreateHook | None = None,
    ) -> None:
        self.namespace = namespace
        self.signature = signature
        self._api = KubeApi.from_environment()
        self._pre_create = pre_create
        self._definitions = DefinitionsFile(
            definitions_path, reload_interval_seconds, read_config_map=ConfigMapReader(self._api, namespace)
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobManagerFactory:
        """From ``JOB_SIGNATURE``, ``JOB_NAMESPACE`` and ``JOB_DEFINITIONS_CONFIG_PATH``."""
        env = os.environ if env is None else env
        path = read_definitions_path(env)
        if path is None:
            raise ConfigurationError(f"{DEFINITIONS_PATH_ENV} is not set: point it at the definitions file")
        return cls(read_namespace(env), read_signature(env), path)

    @classmethod
    def from_vars(cls, signature: str, namespace: str, job_definitions_file_path: str) -> JobManagerFactory:
        """k8s-jobs' spelling of the constructor."""
        return cls(namespace, signature, Path(job_definitions_file_path))

    def manager(self) -> JobManager:
        """A manager on this factory's namespace, signature and definitions."""
        return JobManager(
            namespace=self.namespace,
            signer=JobSigner(self.signature),
            definitions=self._definitions,
            api=self._api,
            pre_create=self._pre_create,
        )
