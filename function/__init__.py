"""jobfn: job definitions rendered into Kubernetes Jobs, behind REST, CloudEvents and AWS Batch.

The public library surface (what k8s-jobs users switch to) is re-exported here, each
name resolved on first use: importing any part of jobfn imports this package first, and
the function's start (``main``) must not pay for the definitions' YAML, templating and
schema libraries before its first request needs them.
``jobfn.k8s_jobs`` is k8s-jobs 0.2.0's API, drop-in; its names (its own ``JobManager``
among them) stay in that submodule.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._contract import JobSigner
    from ._definitions import JobDefinition, JobDefinitions
    from ._definitions_file import DefinitionsFile
    from ._errors import JobfnError
    from ._factory import JobManagerFactory
    from ._manager import JobManager
    from ._store import PodLog
    from ._submission import JobView, Overrides, Submission

_LAZY = {
    "DefinitionsFile": "_definitions_file",
    "JobDefinition": "_definitions",
    "JobDefinitions": "_definitions",
    "JobManager": "_manager",
    "JobManagerFactory": "_factory",
    "JobSigner": "_contract",
    "JobView": "_submission",
    "JobfnError": "_errors",
    "Overrides": "_submission",
    "PodLog": "_store",
    "Submission": "_submission",
}

__all__ = [
    "DefinitionsFile",
    "JobDefinition",
    "JobDefinitions",
    "JobManager",
    "JobManagerFactory",
    "JobSigner",
    "JobView",
    "JobfnError",
    "Overrides",
    "PodLog",
    "Submission",
]


def __getattr__(name: str) -> Any:
    if name == "k8s_jobs":
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
