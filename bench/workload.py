"""The one Job every contender submits, in each contender's own definitions format.

Jobs are created suspended, by every contender alike: no pods are simulated, so the
API server measures job creation and not pod churn. The Job controller still
writes one status update (the Suspended condition) per job, as it would for a job
queued by Kueue.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

DEFINITION_NAME = "bench"
#: The same job under a cap on active jobs: each submission first counts the active ones.
CAPPED_DEFINITION_NAME = "bench-capped"
CAP = 1000
EVENT_TYPE = "dev.jobfn.bench"
SIGNATURE = "jobfn-bench"
MESSAGE = "submitted by the jobfn benchmark"

# One template text for jobfn and k8s-jobs: both render ``{{ message }}`` into the
# same string, so the Jobs they send differ only in jobfn's own labels and annotations.
JOB_TEMPLATE = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: bench
spec:
  suspend: true
  backoffLimit: 0
  activeDeadlineSeconds: 600
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: busybox:1.36
          command: ["echo", "{{ message }}"]
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {memory: 32Mi}
"""


def jobfn_definitions() -> str:
    """jobfn's definitions file with the one benchmark definition."""
    document = {
        "definitions": [
            {
                "name": DEFINITION_NAME,
                "description": "The benchmark's job: suspended, so no pod is ever made.",
                "parameters": {"message": {"type": "string", "maxLength": 1000}},
                "event_types": [EVENT_TYPE],
                "template": JOB_TEMPLATE,
            },
            {
                "name": CAPPED_DEFINITION_NAME,
                "description": "The benchmark's job, at most CAP of them active at once.",
                "parameters": {"message": {"type": "string", "maxLength": 1000}},
                "max_active_jobs": CAP,
                "template": JOB_TEMPLATE,
            },
        ]
    }
    return yaml.safe_dump(document, sort_keys=False)


def write_definitions(directory: Path) -> tuple[Path, Path]:
    """Write jobfn's and k8s-jobs' definitions files; returns (jobfn, k8s-jobs) paths."""
    directory.mkdir(parents=True, exist_ok=True)
    jobfn_path = directory / "jobfn-definitions.yaml"
    jobfn_path.write_text(jobfn_definitions())
    template_path = directory / "k8s-jobs-bench-job.yaml"
    template_path.write_text(JOB_TEMPLATE)
    # k8s-jobs' format: a bare list of {name, spec_path}, as its example ConfigMap mounts it.
    k8s_jobs_path = directory / "k8s-jobs-definitions.yaml"
    k8s_jobs_path.write_text(
        yaml.safe_dump([{"name": DEFINITION_NAME, "spec_path": str(template_path)}], sort_keys=False)
    )
    return jobfn_path, k8s_jobs_path


def rendered_job(namespace: str) -> dict[str, Any]:
    """The Job the function would create for ``{"message": MESSAGE}`` (name aside).

    Rendered by jobfn's own pure core, so the direct client sends the very manifest
    the function sends and the comparison is of the path, not of the payload.
    """
    from jobfn._contract import JobSigner
    from jobfn._definitions import JobDefinitions
    from jobfn._policy import shape_job
    from jobfn._submission import Submission

    definition = JobDefinitions.from_yaml(jobfn_definitions()).get(DEFINITION_NAME)
    arguments = definition.validate({"message": MESSAGE})
    return shape_job(
        definition.template.render(arguments),
        name="bench-direct",
        namespace=namespace,
        signer=JobSigner(SIGNATURE),
        definition=definition,
        submission=Submission(DEFINITION_NAME, arguments),
        arguments=arguments,
    )


def finished_job(name: str, namespace: str, signature: str, finished_at: str) -> tuple[Any, Any]:
    """A Job to reap, and the status patch that finishes it.

    ``spec.managedBy`` hands the Job to an (absent) external controller: the built-in
    Job controller leaves it alone, so no pods are made and nothing races the status
    written here; the API server validates that status as it would an external
    controller's (e.g. Kueue's MultiKueue), so it is a real, well-formed finished Job.
    """
    job = copy.deepcopy(yaml.safe_load(JOB_TEMPLATE.replace("{{ message }}", MESSAGE)))
    job["metadata"] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": signature, "job_definition_name": DEFINITION_NAME},
    }
    job["spec"]["suspend"] = False
    job["spec"]["managedBy"] = "bench.jobfn.dev/finished-by-the-benchmark"
    condition = {"status": "True", "lastProbeTime": finished_at, "lastTransitionTime": finished_at}
    status = {
        "status": {
            "startTime": finished_at,
            "completionTime": finished_at,
            "succeeded": 1,
            "conditions": [
                {**condition, "type": "SuccessCriteriaMet", "reason": "CompletionsReached"},
                {**condition, "type": "Complete", "reason": "CompletionsReached"},
            ],
        }
    }
    return job, status
