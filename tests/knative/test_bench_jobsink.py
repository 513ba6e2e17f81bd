"""The benchmark's jobsink part in smoke mode (`python -m bench --smoke --only jobsink`): every
contender's figures are produced with no error, JobSink's CPU read from its container's cgroup.
Targets are not judged here. (The knative-coldstart part runs coldstart.py, which
test_cold_start.py runs itself.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import SMOKE
from bench.jobsink import CONTENDERS
from tests.helpers import ROOT
from tests.knative import install


@pytest.mark.timeout(600)
def test_the_jobsink_part_measures_every_contender(
    knative: install.Installed, namespace: str, tmp_path: Path
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", "jobsink", "--namespace", namespace,
         "--output", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads((tmp_path / "latest-smoke.json").read_text())

    measured = {(f["contender"], f["concurrency"]): f for f in results["jobsink"]["figures"]}
    assert set(measured) == {(c, n) for c in CONTENDERS for n in SMOKE.concurrencies}
    for figure in measured.values():
        assert figure["errors"] == 0, figure["first_error"]
        assert figure["completed"] > 0 and figure["per_second"] > 0
        assert figure["cpu_ms_per_submission"] > 0 and figure["peak_rss_mib"] > 0
    assert set(results["jobsink"]["api_limits"]) == {"jobsink", "jobsink-limits-raised"}
    targets = [t["target"] for t in results["targets"]]
    assert sum("vs Knative JobSink" in t for t in targets) == 2 * len(SMOKE.concurrencies)
