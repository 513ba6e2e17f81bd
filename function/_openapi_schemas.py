"""The component schemas of the OpenAPI document: jobs, submissions, errors, definitions.

Each mirrors what the code answers or accepts (``JobView.to_json``, ``rest_parsing``,
``web.error_response``); schemathesis holds the two together in the end-to-end tests.
"""

from __future__ import annotations

from typing import Any

from ._retention import HOLD_FOREVER
from ._status import STATES

Schema = dict[str, Any]

_NULLABLE_INT: Schema = {"type": "integer", "nullable": True}
_STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
_JOB_FIELDS = [
    "name",
    "uid",
    "definition",
    "state",
    "reason",
    "created",
    "started",
    "stopped",
    "arguments",
    "deletion_time",
    "array_size",
    "labels",
    "counts",
    "queue",
    "tags",
]


def ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def component_schemas() -> dict[str, Schema]:
    """Every schema the paths refer to, by name."""
    overrides: Schema = {
        "type": "object",
        "description": "Changes on top of the definition's template; each must be allowed by the definition.",
        "additionalProperties": False,
        "properties": {
            "timeout": {"type": "integer", "minimum": 1, "description": "activeDeadlineSeconds"},
            "array_size": {"type": "integer", "minimum": 1, "description": "Run N indexed copies"},
            "retries": {"type": "integer", "minimum": 0, "maximum": 100, "description": "backoffLimit"},
            "command": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "environment": _STRING_MAP,
            "resources": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"requests": _STRING_MAP, "limits": _STRING_MAP},
            },
        },
    }
    pod: Schema = {
        "type": "object",
        "required": ["name", "phase", "node", "index", "containers"],
        "properties": {
            "name": {"type": "string"},
            "phase": {"type": "string"},
            "node": {"type": "string", "nullable": True},
            "index": _NULLABLE_INT,
            "containers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "nullable": True},
                        "state": {"type": "string"},
                        "reason": {"type": "string", "nullable": True},
                        "exit_code": _NULLABLE_INT,
                    },
                },
            },
        },
    }
    attempt: Schema = {
        "type": "object",
        "required": ["pod", "container", "exit_code", "reason", "message", "started", "stopped"],
        "properties": {
            "pod": {"type": "string"},
            "container": {"type": "string"},
            "exit_code": {"type": "integer"},
            "reason": {"type": "string", "description": "Completed, Error, OOMKilled, ..."},
            "message": {"type": "string"},
            "started": _NULLABLE_INT,
            "stopped": _NULLABLE_INT,
        },
    }
    counts: Schema = {
        "type": "object",
        "required": ["active", "succeeded", "failed"],
        "properties": {name: {"type": "integer"} for name in ("active", "succeeded", "failed")},
    }
    state_counts: Schema = {
        "type": "object",
        "required": list(STATES),
        "properties": {state: {"type": "integer", "minimum": 0} for state in STATES},
    }
    job: Schema = {
        "type": "object",
        "required": _JOB_FIELDS,
        "properties": {
            "name": {"type": "string"},
            "uid": {"type": "string"},
            "definition": {"type": "string"},
            "state": {"type": "string", "enum": list(STATES)},
            "reason": {"type": "string"},
            "created": _NULLABLE_INT,
            "started": _NULLABLE_INT,
            "stopped": _NULLABLE_INT,
            "arguments": {"type": "object", "description": "The arguments the job was submitted with"},
            "deletion_time": {**_NULLABLE_INT, "description": "Unix time after which it may be deleted"},
            "array_size": _NULLABLE_INT,
            "labels": _STRING_MAP,
            "counts": counts,
            "queue": {"type": "string", "nullable": True, "description": "The queue it was submitted to"},
            "tags": _STRING_MAP,
            "overrides": {"type": "object", "description": "The overrides it was submitted with"},
            "depends_on": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"type": "string"},
                        {
                            "type": "object",
                            "properties": {"job": {"type": "string"}, "type": {"type": "string"}},
                        },
                    ]
                },
                "description": "The jobs it waits (or waited) for; {job, type: N_TO_N} for child-by-child",
            },
            "pods": {"type": "array", "items": pod, "description": "Only when one job is described"},
            "attempts": {
                "type": "array",
                "items": attempt,
                "description": "Finished tries, oldest first; only when one job is described",
            },
            "job_name": {"type": "string", "description": "Only for a k8s-jobs style submission"},
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "problems", "request_id"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "problems": {"type": "array", "items": {"type": "string"}},
                        "request_id": {"type": "string"},
                    },
                }
            },
        },
        "Job": job,
        "Summary": {
            "type": "object",
            "required": ["definitions", "queues", "total"],
            "properties": {
                "definitions": {"type": "object", "additionalProperties": state_counts},
                "queues": {
                    "type": "object",
                    "additionalProperties": state_counts,
                    "description": "By queue; '' holds the jobs submitted to none",
                },
                "total": {"type": "integer"},
            },
        },
        "Events": {
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["time", "type", "reason", "object", "message", "count"],
                        "properties": {
                            "time": _NULLABLE_INT,
                            "type": {"type": "string", "description": "Normal or Warning"},
                            "reason": {"type": "string"},
                            "object": {"type": "string", "description": "Job/<name> or Pod/<name>"},
                            "message": {"type": "string"},
                            "count": {"type": "integer"},
                        },
                    },
                }
            },
        },
        "JobPage": {
            "type": "object",
            "required": ["jobs", "next_token"],
            "properties": {
                "jobs": {"type": "array", "items": ref("Job")},
                "next_token": {"type": "string", "nullable": True},
            },
        },
        "JobStatus": {
            "type": "object",
            "required": ["job_name", "state", "reason", "started", "stopped", "counts"],
            "properties": {
                "job_name": {"type": "string"},
                "state": {"type": "string", "enum": list(STATES)},
                "reason": {"type": "string"},
                "started": _NULLABLE_INT,
                "stopped": _NULLABLE_INT,
                "counts": counts,
            },
        },
        "Submission": {
            "type": "object",
            "required": ["definition"],
            "additionalProperties": False,
            "properties": {
                "definition": {"type": "string", "minLength": 1},
                "arguments": {"type": "object", "description": "Checked against the definition's parameters"},
                "overrides": overrides,
                "tags": _STRING_MAP,
                "queue": {"type": "string"},
                "depends_on": {
                    "type": "array",
                    "maxItems": 20,
                    "description": "Jobs that must succeed first (names, or {job, type} as AWS's dependsOn)",
                    "items": {
                        "anyOf": [
                            {"type": "string", "minLength": 1},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "job": {"type": "string"},
                                    "type": {"type": "string", "enum": ["SEQUENTIAL", "N_TO_N"]},
                                },
                            },
                        ]
                    },
                },
            },
        },
        "K8sJobsSubmission": {
            "type": "object",
            "description": "k8s-jobs' body: the definition's name and the arguments, side by side",
            "required": ["job_definition_name"],
            "properties": {"job_definition_name": {"type": "string", "minLength": 1}},
            "additionalProperties": True,
        },
        "Retention": {
            "oneOf": [
                _single("hold", {"type": "boolean", "enum": [True]}, "Keep until someone changes it"),
                _single(
                    "delete_after", {"type": "integer", "minimum": 0, "maximum": HOLD_FOREVER}, "Unix time"
                ),
                _single(
                    "extend_seconds", {"type": "integer", "minimum": 1, "maximum": HOLD_FOREVER}, "Add time"
                ),
            ]
        },
        "Termination": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "\\S"}},
        },
        "Definition": {
            "type": "object",
            "required": ["name", "description", "parameters", "allowed_overrides", "event_types"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "parameters": {"type": "object", "description": "JSON Schema of the arguments"},
                "allowed_overrides": {"type": "array", "items": {"type": "string"}},
                "max_active_deadline_seconds": _NULLABLE_INT,
                "max_array_size": _NULLABLE_INT,
                "max_active_jobs": _NULLABLE_INT,
                "event_types": {"type": "array", "items": {"type": "string"}},
                "retention": {
                    "type": "object",
                    "properties": {"succeeded": _NULLABLE_INT, "failed": _NULLABLE_INT},
                },
            },
        },
    }


def _single(name: str, schema: Schema, description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "required": [name],
        "additionalProperties": False,
        "properties": {name: schema},
    }
