"""k8s-jobs' spec sources and ``JobGenerator``, over jobfn's templating.

A spec source holds a Job template (inline YAML, a file, a ConfigMap or a static
manifest). Rendering is jobfn's: the YAML is parsed first and each value is then
rendered by a sandboxed Jinja2 environment, so a caller's argument can never change
the Job's structure (k8s-jobs rendered the text, then parsed it).
"""

from __future__ import annotations

import functools
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._contract import random_job_name
from .._definitions import JobDefinition, parse_definition
from .._errors import DefinitionError
from .._templating import JobTemplate, Template
from ._models import Manifest, library_api_client, to_manifest, to_v1_job

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Job

_PARSED_TEXTS = 256  # distinct template texts kept parsed (a handful per definition over time)


@functools.lru_cache(maxsize=_PARSED_TEXTS)
def _template_of(text: str) -> JobTemplate:
    return JobTemplate(text, "job spec")


@functools.lru_cache(maxsize=_PARSED_TEXTS)
def _definition_of(name: str, text: str) -> JobDefinition:
    # Parsed as a definitions-file entry, so it follows jobfn's rules for a k8s-jobs
    # definition: every template variable is a required string parameter.
    return parse_definition({"name": name, "spec": text})


class JobSpecSource(ABC):
    """Where a Job template comes from."""

    @abstractmethod
    def template_text(self) -> str:
        """The template's YAML as the source holds it now."""

    def template(self) -> Template:
        """The current template, parsed (once per distinct text)."""
        return _template_of(self.template_text())

    def definition(self, name: str) -> JobDefinition:
        """The current template as jobfn's definition ``name``: what the core submits."""
        return _definition_of(name, self.template_text())

    def get(self, template_args: Mapping[str, Any] | None = None) -> Manifest | V1Job:
        """The Job manifest rendered with ``template_args``; a missing variable raises DefinitionError."""
        return self.template().render(template_args or {})

    def template_vars(self) -> list[str]:
        """The variables the template uses."""
        return sorted(self.template().variables)


class StaticSpecSource(JobSpecSource):
    """A fixed manifest (a ``V1Job`` or a dict); ``get`` returns a copy of it as given."""

    def __init__(self, config: V1Job | Mapping[str, Any]) -> None:
        self.config = config

    def template_text(self) -> str:
        import json

        return json.dumps(to_manifest(self.config))  # JSON is YAML

    def get(self, template_args: Mapping[str, Any] | None = None) -> Manifest | V1Job:
        manifest = to_manifest(self.config)
        return manifest if isinstance(self.config, Mapping) else to_v1_job(manifest)

    def template_vars(self) -> list[str]:
        return []


class YamlStringSpecSource(JobSpecSource):
    """A template given as YAML text."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def template_text(self) -> str:
        return self.spec


class YamlFileSpecSource(JobSpecSource):
    """A template file, read again whenever it changes (a ConfigMap volume's swap included)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._fingerprint: tuple[int, int, int] | None = None
        self._text: str | None = None

    def template_text(self) -> str:
        with self._lock:
            try:
                stat = os.stat(self.path)
                fingerprint = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                if fingerprint != self._fingerprint:
                    with open(self.path, encoding="utf-8") as file:
                        self._text = file.read()
                    self._fingerprint = fingerprint
            except OSError as error:
                if self._text is None:
                    raise DefinitionError(f"cannot read job spec {self.path!r}: {error.strerror}") from None
                # As k8s-jobs: a file gone for a moment keeps the last spec read.
            assert self._text is not None  # read above, or raised
            return self._text


class ConfigMapSpecSource(JobSpecSource):
    """A template in ConfigMap ``name``, under the key of the same name; read on every use."""

    def __init__(self, name: str, namespace: str, api_client: ApiClient | None = None) -> None:
        self.name = name
        self.namespace = namespace
        self._api_client = api_client

    def template_text(self) -> str:
        if self._api_client is None:
            self._api_client = library_api_client()
        return read_config_map(self._api_client, self.namespace, self.name, self.name)


def read_config_map(api_client: ApiClient, namespace: str, name: str, key: str) -> str:
    """Key ``key`` of ConfigMap ``name``, through jobfn's Kubernetes boundary."""
    from .._config_maps import ConfigMapReader
    from .._kube import KubeApi

    return ConfigMapReader(KubeApi(api_client), namespace)(namespace, name, key)


class JobGenerator:
    """Renders a spec source's template into a new Job with a fresh unique name."""

    def __init__(self, spec_source: JobSpecSource) -> None:
        self.spec_source = spec_source

    def generate(self, template_args: Mapping[str, Any] | None = None) -> Manifest | V1Job:
        """The rendered Job, named ``<its name>-<random suffix>`` as jobfn names jobs."""
        job = self.spec_source.get(template_args=template_args)
        if isinstance(job, dict):
            metadata = job.setdefault("metadata", {})
            metadata["name"] = random_job_name(str(metadata.get("name") or "job"))
        elif job.metadata is not None:
            job.metadata.name = random_job_name(str(job.metadata.name or "job"))
        return job

    def template_vars(self) -> list[str]:
        return self.spec_source.template_vars()

    def definition(self, name: str) -> JobDefinition:
        """The generator's template as jobfn's definition ``name``."""
        return self.spec_source.definition(name)
