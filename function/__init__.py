"""jobfn: job definitions rendered into Kubernetes Jobs, behind REST, CloudEvents and AWS Batch.

The public library surface (what k8s-jobs users switch to) is re-exported here.
``JobManager`` and friends load the Kubernetes client, which is slow to import, so
they are resolved on first use rather than when this package is imported.
``jobfn.k8s_jobs`` is k8s-jobs 0.2.0's API, drop-in; its names (its own ``JobManager``
among them) stay in that submodule.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._contract import JobSigner
from ._definitions import JobDefinition, JobDefinitions
from ._definitions_file import DefinitionsFile
from ._errors import JobfnError
from ._submission import JobView, Overrides, Submission

if TYPE_CHECKING:
    from ._factory import JobManagerFactory
    from ._manager import JobManager
    from ._store import PodLog

_LAZY = {"JobManager": "_manager", "PodLog": "_store", "JobManagerFactory": "_factory"}

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
