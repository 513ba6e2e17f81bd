"""The benchmark harness in smoke mode: every figure is produced (targets are not judged here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.harness import SMOKE
from bench.submission import CONTENDERS

REPO = Path(__file__).resolve().parents[2]


def test_smoke_run_produces_every_figure(kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--namespace", namespace, "--output", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads((tmp_path / "latest-smoke.json").read_text())
    assert "Targets" in (tmp_path / "latest-smoke.txt").read_text()

    submitted = {(f["contender"], f["concurrency"]): f for f in results["submission"]}
    assert set(submitted) == {(c, n) for c in CONTENDERS for n in SMOKE.concurrencies}
    for figure in submitted.values():
        assert figure["errors"] == 0, (figure["contender"], figure["concurrency"], figure["first_error"])
        assert figure["completed"] > 0
        assert figure["per_second"] > 0 and figure["p50_ms"] > 0 and figure["p99_ms"] >= figure["p50_ms"]
        assert figure["cpu_ms_per_submission"] > 0 and figure["peak_rss_mib"] > 0

    starts = {f["kind"]: f for f in results["cold_start"]}
    assert set(starts) == {"hello-world", "function-submission", "function-ready"}
    assert all(f["starts"] == SMOKE.cold_starts and f["median_ms"] > 0 for f in starts.values())

    reaped = {(f["contender"], f["jobs"]): f for f in results["reaper"]}
    assert set(reaped) == {(c, n) for c in ("reaper", "kubectl") for n in SMOKE.reaper_sizes}
    for figure in reaped.values():
        assert figure["jobs_left"] == 0, figure
        assert figure["wall_seconds"] > 0 and figure["peak_rss_mib"] > 0
        assert figure["server_counted_requests"] >= figure["jobs"]
    assert all(reaped[("reaper", n)]["api_calls"] for n in SMOKE.reaper_sizes)

    memory = results["memory"]
    assert memory["late_submissions"] == SMOKE.memory_late and memory["errors"] == 0
    assert memory["early_rss_mib"] > 0 and memory["late_rss_mib"] > 0
    assert memory["hello_world_requests"] == SMOKE.memory_late and memory["hello_world_rss_mib"] > 0
    assert memory["forwarder_submissions"] == SMOKE.memory_late and memory["forwarder_rss_mib"] > 0

    scale = {(f["measure"], f["jobs"]): f for f in results["scale"]}
    assert {jobs for _, jobs in scale} == set(SMOKE.scale_sizes)
    for size in SMOKE.scale_sizes:
        for measure in ("submit bench", "submit bench-capped", "list rest RUNNING", "list aws FAILED"):
            assert scale[(measure, size)]["errors"] == 0 and scale[(measure, size)]["p50_ms"] > 0, measure
        assert (
            scale[("reaper pass", size)]["errors"] == 0 and scale[("reaper pass", size)]["peak_rss_mib"] > 0
        )
    assert scale[("list aws SUCCEEDED", max(SMOKE.scale_sizes))]["samples"] > 0

    floors = results["framework_floor_vs_direct_client"]
    assert set(floors) == {str(n) for n in SMOKE.concurrencies}
    assert all(floor["cpu"] > 0 and 0 < floor["throughput"] < 1 for floor in floors.values()), floors
    assert all(
        floor["forwarder_cpu"] > 0 and floor["forwarder_throughput"] > 0 for floor in floors.values()
    ), floors

    assert results["targets"], "no target was checked"
    missing = [t["target"] for t in results["targets"] if t["ratio"] is None]
    assert not missing, f"targets without a figure: {missing}"
