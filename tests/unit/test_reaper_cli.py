"""The reaper's command line: exit codes, stderr for people, stdout for machines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from jobfn._definitions import JobDefinitions
from jobfn._logs import JsonFormatter
from jobfn.reaper._reaping import RunSummary, retention_policy

ROOT = Path(__file__).resolve().parents[2]


def run_reaper(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobfn.reaper", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_configuration_exits_2_naming_the_culprit_and_prints_nothing_on_stdout() -> None:
    result = run_reaper("--page-size", "0", env={"JOB_SIGNATURE": "ok"})

    assert result.returncode == 2
    assert "--page-size='0'" in result.stderr
    assert result.stdout == ""


def test_no_kubernetes_configuration_exits_2(tmp_path: Path) -> None:
    result = run_reaper(env={"HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "missing")})

    assert result.returncode == 2
    assert "no Kubernetes configuration" in result.stderr
    assert result.stdout == ""


def test_log_lines_are_json_with_their_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "jobfn.reaper._reaping", "levelname": "INFO", "msg": "deleted job", "job": "a", "uid": "u"}
    )

    entry = json.loads(JsonFormatter().format(record))

    assert (entry["message"], entry["job"], entry["uid"], entry["level"]) == ("deleted job", "a", "u", "INFO")


def test_summary_has_the_counts_the_issue_asks_for() -> None:
    summary = RunSummary(seen=3, marked=2, deleted=1, archived=1, duration_seconds=0.5, api_calls=6)

    assert set(summary.to_json()) >= {
        "seen",
        "marked",
        "deleted",
        "archived",
        "errors",
        "skipped",
        "duration_seconds",
        "api_calls",
    }
    json.dumps(summary.to_json())


def test_definition_retention_overrides_the_flags() -> None:
    definitions = JobDefinitions.from_yaml(
        """
        - name: short
          retention: {succeeded: 5}
          template: |
            apiVersion: batch/v1
            kind: Job
            spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}}}
        """
    )

    policy = retention_policy(100, 1000, definitions)

    assert (policy.succeeded_seconds, policy.failed_seconds) == (100, 1000)
    assert policy.per_definition is not None
    assert policy.per_definition["short"].succeeded == 5
    assert policy.per_definition["short"].failed is None
