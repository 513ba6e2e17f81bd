"""k8s-jobs 0.2.0's API over jobfn: a k8s-jobs program runs with only its imports changed.

    from k8s_jobs.manager import JobManager, JobDeleter    →  from jobfn.k8s_jobs import ...
    from k8s_jobs.config import JobManagerFactory          →  from jobfn.k8s_jobs import ...
    from k8s_jobs.spec import JobGenerator, ...            →  from jobfn.k8s_jobs import ...

The names, signatures and return types (``V1Job`` objects, ``{pod: {container:
[lines]}}`` logs, ``JobManager.JobStatus``) are k8s-jobs'; what happens behind them is
jobfn's: jobs are created through its ``submit`` (sandboxed templating, argument
validation, forced identity), deletes carry uid and resourceVersion preconditions,
and retention counts from when a job finished. ``JobManager.jobfn_manager`` is jobfn's
own manager on the same jobs, for moving to the native API one call at a time.
This package is the only part of jobfn that returns the kubernetes client's models.
"""

from ._config import JobDefinition, JobManagerFactory
from ._deleter import JobDeleter
from ._manager import JobManager
from ._register import (
    JobDefinitionsRegister,
    JobSigner,
    NotFoundException,
    ReloadingJobDefinitionsRegister,
    StaticJobDefinitionsRegister,
)
from ._spec import (
    ConfigMapSpecSource,
    JobGenerator,
    JobSpecSource,
    StaticSpecSource,
    YamlFileSpecSource,
    YamlStringSpecSource,
)

__all__ = [
    "ConfigMapSpecSource",
    "JobDefinition",
    "JobDefinitionsRegister",
    "JobDeleter",
    "JobGenerator",
    "JobManager",
    "JobManagerFactory",
    "JobSigner",
    "JobSpecSource",
    "NotFoundException",
    "ReloadingJobDefinitionsRegister",
    "StaticJobDefinitionsRegister",
    "StaticSpecSource",
    "YamlFileSpecSource",
    "YamlStringSpecSource",
]
