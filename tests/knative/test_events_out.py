"""Events out of jobfn through Knative: the SinkBinding gives the reaper's runs K_SINK (and, OIDC
being on, a token for the broker), so archive records and state changes reach the broker;
the ApiServerSource tells the function of job changes and its state-change reply is routed.

The recorder (tests/knative/data/recorder.py) is subscribed by Triggers of the test
overlay to dev.jobfn.job.archived, dev.jobfn.job.state-changed, dev.jobfn.job.submitted
and the ApiServerSource's dev.knative.apiserver.resource.update.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.helpers import wait_for
from tests.knative.conftest import Deployed
from tests.knative.services import get_json

ARCHIVED = "dev.jobfn.job.archived"
STATE_CHANGED = "dev.jobfn.job.state-changed"
JOB_UPDATED = "dev.knative.apiserver.resource.update"


def records(deployed: Deployed, event_type: str, subject: str) -> list[dict[str, Any]]:
    return [
        r for r in deployed.recorded() if r.get("ce-type") == event_type and r.get("ce-subject") == subject
    ]


def wait_for_state(deployed: Deployed, name: str, state: str, timeout: float = 120) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        view: dict[str, Any] = deployed.request("GET", f"/jobs/{name}").json()
        return view if view.get("state") == state else None

    return wait_for(reached, timeout=timeout, interval=1, what=f"{name} {state}")


def test_a_reaper_run_gets_k_sink_and_its_archive_record_reaches_the_broker(deployed: Deployed) -> None:
    answer = deployed.submit("quick", message="archive me")
    assert answer.status_code == 201, answer.text
    name = answer.json()["name"]
    wait_for_state(deployed, name, "SUCCEEDED")
    run = f"reaper-{uuid.uuid4().hex[:8]}"

    deployed.kubectl("create", "job", run, "--from=cronjob/jobfn-reaper", "-n", deployed.namespace)
    deployed.kubectl(
        "wait", "--for=condition=Complete", f"job/{run}", "-n", deployed.namespace, "--timeout=120s"
    )

    broker = get_json(deployed.kubectl, "broker", "-n", deployed.namespace, "default")["status"]["address"][
        "url"
    ]
    pod_spec = get_json(deployed.kubectl, "job", "-n", deployed.namespace, run)["spec"]["template"]["spec"]
    [container] = pod_spec["containers"]
    env = {item["name"]: item.get("value") for item in container.get("env", [])}
    assert env["K_SINK"] == broker
    assert "oidc-token" in {v["name"] for v in pod_spec["volumes"]}  # the broker's audience, at /oidc/token
    [archived] = wait_for(
        lambda: records(deployed, ARCHIVED, name), timeout=60, interval=1, what="the archive record"
    )
    assert archived["data"]["name"] == name and archived["data"]["state"] == "SUCCEEDED"
    succeeded = [r for r in records(deployed, STATE_CHANGED, name) if r["data"]["status"] == "SUCCEEDED"]
    assert succeeded  # the run's state event (or the function's reply, below): one id, `<uid>:SUCCEEDED`
    assert {r["ce-id"] for r in succeeded} == {f"{archived['data']['uid']}:SUCCEEDED"}
    assert (
        deployed.kubectl("get", "job", name, "-n", deployed.namespace, check=False).returncode != 0
    )  # deleted
    log = deployed.kubectl("logs", "-n", deployed.namespace, f"job/{run}").stdout
    [summary] = [
        json.loads(line) for line in log.splitlines() if line.startswith('{"') and '"errors"' in line
    ]
    assert summary["errors"] == 0, log


def test_the_api_server_source_tells_the_function_and_its_state_change_reply_is_routed(
    deployed: Deployed,
) -> None:
    answer = deployed.submit("simulated", tag="watched")
    assert answer.status_code == 201, answer.text
    name = answer.json()["name"]

    wait_for(
        lambda: records(deployed, JOB_UPDATED, f"/apis/batch/v1/namespaces/{deployed.namespace}/jobs/{name}"),
        timeout=90,
        interval=1,
        what="the source's job update",
    )
    states = wait_for(
        lambda: (
            {r["data"]["status"] for r in records(deployed, STATE_CHANGED, name)} >= {"SUCCEEDED"}
            and {r["data"]["status"] for r in records(deployed, STATE_CHANGED, name)}
        ),
        timeout=90,
        interval=1,
        what=f"the state changes of {name}",
    )

    assert "SUCCEEDED" in states
    # The reaper's CronJob is suspended here: these came from the function's replies to the source.
    assert not [
        r for r in deployed.recorded() if r.get("ce-type") == ARCHIVED and r.get("ce-subject") == name
    ]
