"""deploy/ running for real on the local cluster's real node: ``kubectl apply -k`` of
deploy/plain/ (everything but Knative), the function's image as a Deployment made from the
Knative Service's pod template behind a ClusterIP Service, and the reaper's image as
deploy/'s CronJob, firing by itself.

Every call to the function goes to its ClusterIP from inside the cluster's network
namespace (``localcluster.in_cluster_network``), through kube-proxy, as an in-cluster
caller's would, with a caller ServiceAccount's token (the Service keeps deploy/'s
``JOBFN_AUTH=tokenreview``). Jobs run real containers (busybox, perl), no KWOK opt-in.
The function's jobs are all submitted when the module starts, so their pods run side by
side while the tests look at one each.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
import requests
import yaml
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from kubernetes import client

from jobfn._contract import DELETION_TIME_ANNOTATION, MANAGED_BY_LABEL, JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._kube import KubeApi
from jobfn._manager import JobManager
from jobfn._status import is_terminal
from jobfn._submission import Submission
from tests.cluster.localcluster import in_cluster_network
from tests.cluster.node import NODE_NAME
from tests.deploy.conftest import Installation, install_plain, service_account_token, uninstall_cluster_scoped
from tests.deploy.manifests import (
    DEFINITIONS_FILE,
    DEPLOY,
    PLAIN,
    ROOT,
    as_stream,
    env_of,
    function_container,
    function_deployment,
    is_knative,
    reaper_container,
    reaper_cronjob,
    render,
)
from tests.helpers import Kubectl, create_namespace, wait_for

T = TypeVar("T")
TEST_DEFINITIONS = ROOT / "tests" / "data" / "definitions" / "real-node.yaml"
CALLER = "jobfn-test-caller"
# Under JOBFN_AUTH=tokenreview the AWS Batch door is closed unless a key is configured.
AWS_KEY = ("AKIDJOBFNREALNODE", "real-node-secret")
JOB_TIMEOUT = 90.0  # a real pod: scheduled, sandbox, container, exit
MESSAGE = "hello from the real node"
EVENT_MESSAGE = "hello from a CloudEvent"
ERROR_LINE = re.compile(r"ERROR|CRITICAL|Traceback|Control server error|Errno 30")


def definitions_for_the_test() -> str:
    """deploy/'s sample definitions and the test's own (tests/data/definitions/real-node.yaml)."""
    document = yaml.safe_load(DEFINITIONS_FILE.read_text())
    document["definitions"] += yaml.safe_load(TEST_DEFINITIONS.read_text())["definitions"]
    return yaml.safe_dump(document, sort_keys=False)


def sample_names() -> list[str]:
    return [definition.name for definition in JobDefinitions.from_yaml(DEFINITIONS_FILE.read_text())]


# --- the function as a Deployment -------------------------------------------------------------
def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except (requests.ConnectionError, requests.Timeout):
        return False


@dataclass(frozen=True)
class InClusterFunction:
    """The function's Deployment, called at its Service's ClusterIP from inside the cluster."""

    installation: Installation
    url: str
    token: str
    pod: str
    batch: Any  # boto3's batch client, pointed at the Service

    @property
    def namespace(self) -> str:
        return self.installation.namespace

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return in_cluster_network(
            lambda: requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        )

    def aws(self, call: Callable[[Any], T]) -> T:
        """``call(batch client)``, its connections inside the cluster's network."""
        return in_cluster_network(lambda: call(self.batch))

    def submit(self, definition: str, **arguments: Any) -> str:
        answer = self.request("POST", "/jobs", json={"definition": definition, "arguments": arguments})
        assert answer.status_code == 201, answer.text
        name: str = answer.json()["name"]
        return name

    def job(self, name: str) -> dict[str, Any]:
        answer = self.request("GET", f"/jobs/{name}")
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view

    def wait_for_state(self, name: str, state: str, timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            view = self.job(name)
            assert view["state"] not in {"SUCCEEDED", "FAILED"} - {state}, view
            return view if view["state"] == state else None

        return wait_for(reached, timeout=timeout, interval=0.5, what=f"{name} {state}")


@pytest.fixture(scope="module")
def function(
    api_client: client.ApiClient,
    kubectl: Kubectl,
    kubectl_binary: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[InClusterFunction]:
    """deploy/plain/ applied in a namespace of its own (the reaper suspended), the function's
    Deployment and Service beside it, rolled out; a caller ServiceAccount's token."""
    namespace = create_namespace(api_client, "deploy-real-node-function")
    core = client.CoreV1Api(api_client)
    installation = install_plain(
        kubectl,
        kubectl_binary,
        namespace,
        tmp_path_factory.mktemp("plain"),
        definitions=definitions_for_the_test(),
    )
    try:
        deployment, service = function_deployment(render(kubectl_binary, DEPLOY))
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        container["env"] += [
            {"name": "JOBFN_AWS_ACCESS_KEY_ID", "value": AWS_KEY[0]},
            {"name": "JOBFN_AWS_SECRET_ACCESS_KEY", "value": AWS_KEY[1]},
        ]
        kubectl("apply", "-n", namespace, "-f", "-", input=as_stream([deployment, service]))
        core.create_namespaced_service_account(namespace, {"metadata": {"name": CALLER}})
        name = deployment["metadata"]["name"]
        kubectl("rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=90s")
        selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
        [pod] = core.list_namespaced_pod(namespace, label_selector=selector).items
        url = f"http://{core.read_namespaced_service(name, namespace).spec.cluster_ip}"
        # Rolled out is not yet reachable at the ClusterIP: kube-proxy programs the Service's
        # rules on its own time, and a SYN sent before them stays unanswered (CI run 15: six
        # setups timed out on the first request). Short tries until /healthz answers.
        wait_for(
            lambda: in_cluster_network(lambda: _answers(f"{url}/healthz")), timeout=60, what="the Service"
        )
        batch = boto3.client(
            "batch",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=AWS_KEY[0],
            aws_secret_access_key=AWS_KEY[1],
        )
        token = service_account_token(api_client, namespace, CALLER)
        yield InClusterFunction(installation, url, token, pod.metadata.name, batch)
    finally:
        uninstall_cluster_scoped(kubectl, installation)
        core.delete_namespace(namespace, propagation_policy="Background")


@dataclass(frozen=True)
class Submitted:
    """The jobs submitted through the function when the module starts, by what they are for."""

    hello: str  # REST, MESSAGE
    event: str  # a binary CloudEvent of type dev.jobfn.hello, EVENT_MESSAGE
    exits_3: str  # AWS SubmitJob of `script` running `exit 3`
    sleeper: str  # REST, `sleep 300`: terminated by a test
    samples: dict[str, str]  # each sample definition with its default arguments


@pytest.fixture(scope="module")
def submitted(function: InClusterFunction, api_client: client.ApiClient, kubectl_binary: Path) -> Submitted:
    cloud_event = CloudEvent(
        {"type": "dev.jobfn.hello", "source": "/tests/deploy/real-node", "id": uuid.uuid4().hex},
        {"message": EVENT_MESSAGE},
    )
    headers, body = to_binary(cloud_event)
    # An event's token is for the function's event audience, as a Knative broker's is.
    audience = env_of(function_container(render(kubectl_binary, DEPLOY)))["JOBFN_EVENT_AUDIENCE"]
    event_token = service_account_token(api_client, function.namespace, CALLER, audience=audience)
    event_answer = function.request(
        "POST", "/", headers={**headers, "Authorization": f"Bearer {event_token}"}, data=body
    )
    assert event_answer.status_code == 201, event_answer.text
    aws_answer = function.aws(
        lambda batch: batch.submit_job(
            jobName="exits-3", jobQueue="main", jobDefinition="script", parameters={"script": "exit 3"}
        )
    )
    return Submitted(
        hello=function.submit("hello", message=MESSAGE),
        event=event_answer.headers["ce-subject"],
        exits_3=aws_answer["jobId"],
        sleeper=function.submit("script", script="sleep 300"),
        samples={name: function.submit(name) for name in sample_names()},
    )


def pod_log(function: InClusterFunction, view: dict[str, Any], **query: Any) -> str:
    """One container's log through GET /jobs/{name}/logs."""
    [pod] = view["pods"]
    [container] = pod["containers"]
    answer = function.request(
        "GET",
        f"/jobs/{view['name']}/logs",
        params={"pod": pod["name"], "container": container["name"], **query},
    )
    assert answer.status_code == 200, answer.text
    return answer.text


def test_plain_applies_with_kubectl_apply_k_and_holds_nothing_of_knative(
    function: InClusterFunction, kubectl: Kubectl
) -> None:
    manifests = function.installation.manifests
    live = json.loads(kubectl("get", "-f", "-", "-o", "json", input=as_stream(manifests)).stdout)["items"]

    assert sorted((m["kind"], m["metadata"]["name"]) for m in live) == sorted(
        (m["kind"], m["metadata"]["name"]) for m in manifests
    )
    assert {m["kind"] for m in manifests} == {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CronJob",
    }
    assert not any(is_knative(m) for m in manifests)


def test_the_function_pod_runs_on_the_real_node_as_the_knative_service_would(
    function: InClusterFunction, api_client: client.ApiClient, kubectl_binary: Path
) -> None:
    knative_container = function_container(render(kubectl_binary, DEPLOY))
    response = client.CoreV1Api(api_client).read_namespaced_pod(
        function.pod, function.namespace, _preload_content=False
    )
    pod = json.loads(response.data)
    [container] = pod["spec"]["containers"]

    assert pod["spec"]["nodeName"] == NODE_NAME
    assert pod["spec"]["serviceAccountName"] == "jobfn-function"
    assert container["image"] == knative_container["image"]
    assert container["securityContext"] == knative_container["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "JOB_NAMESPACE" not in env_of(container)  # the namespace comes from its token
    assert all(status["ready"] for status in pod["status"]["containerStatuses"])


def test_a_rest_submission_runs_hello_on_the_real_node_and_its_log_is_the_message(
    function: InClusterFunction, submitted: Submitted, kubectl: Kubectl
) -> None:
    view = function.wait_for_state(submitted.hello, "SUCCEEDED")

    assert [pod["node"] for pod in view["pods"]] == [NODE_NAME]
    assert pod_log(function, view, tail=1) == f"{MESSAGE}\n"
    assert kubectl("logs", "-n", function.namespace, f"job/{submitted.hello}").stdout == f"{MESSAGE}\n"


def test_a_binary_cloudevent_runs_its_job_to_succeeded(
    function: InClusterFunction, submitted: Submitted
) -> None:
    view = function.wait_for_state(submitted.event, "SUCCEEDED")

    assert view["definition"] == "hello"
    assert pod_log(function, view) == f"{EVENT_MESSAGE}\n"


def test_each_sample_definition_runs_to_succeeded_on_the_real_node(
    function: InClusterFunction, submitted: Submitted
) -> None:
    views = {name: function.wait_for_state(job, "SUCCEEDED") for name, job in submitted.samples.items()}

    assert set(views) == {"hello", "pi"}
    assert pod_log(function, views["hello"]) == "Hello from jobfn\n"  # the sample's default message
    digits = pod_log(function, views["pi"]).strip()
    assert digits.startswith("3.14159265358979") and len(digits) == len("3.") + 1999  # 2000 significant


def test_terminating_a_running_sleep_removes_its_pods_and_fails_it_with_the_callers_reason(
    function: InClusterFunction, submitted: Submitted, api_client: client.ApiClient
) -> None:
    name = submitted.sleeper
    function.wait_for_state(name, "RUNNING")

    answer = function.request(
        "POST", f"/jobs/{name}/terminate", json={"reason": "stopped by the real-node test"}
    )

    assert answer.status_code == 200, answer.text
    failed = function.wait_for_state(name, "FAILED", timeout=60)
    assert failed["reason"] == "Terminated: stopped by the real-node test"
    core = client.CoreV1Api(api_client)
    wait_for(
        lambda: not core.list_namespaced_pod(function.namespace, label_selector=f"job-name={name}").items,
        timeout=60,
        what=f"the pods of {name} gone",
    )


def test_describe_jobs_through_boto3_gives_the_real_exit_code_in_the_attempts(
    function: InClusterFunction, submitted: Submitted
) -> None:
    def described() -> dict[str, Any] | None:
        [job] = function.aws(lambda batch: batch.describe_jobs(jobs=[submitted.exits_3]))["jobs"]
        return dict(job) if job["status"] == "FAILED" else None

    job = wait_for(described, timeout=JOB_TIMEOUT, interval=0.5, what=f"{submitted.exits_3} FAILED")

    assert [attempt["container"]["exitCode"] for attempt in job["attempts"]] == [3]
    assert job["container"]["exitCode"] == 3
    assert "exit code(s) 3" in job["statusReason"]


def test_the_function_logged_no_error_and_gunicorn_put_its_control_socket_in_home(
    function: InClusterFunction, submitted: Submitted, kubectl: Kubectl
) -> None:
    # Last in the module: by now the function has served every door and every job above.
    log = kubectl("logs", "-n", function.namespace, function.pod).stdout
    home = kubectl(
        "exec",
        *("-n", function.namespace, function.pod, "--"),
        *("sh", "-c", "echo $HOME; ls -A $HOME/.gunicorn"),
        check=False,
    )

    assert log.strip(), "the function logged nothing"
    assert [line for line in log.splitlines() if ERROR_LINE.search(line)] == []
    assert home.stdout.split() == ["/tmp", "gunicorn.ctl"], home.stderr


# --- the reaper as deploy/'s CronJob -------------------------------------------------------------
def submit(manager: JobManager, definition: str, **arguments: Any) -> str:
    return manager.submit(Submission(definition, arguments)).name


def live_jobs(api_client: client.ApiClient, namespace: str) -> dict[str, dict[str, Any]]:
    response = client.BatchV1Api(api_client).list_namespaced_job(namespace, _preload_content=False)
    return {job["metadata"]["name"]: job for job in json.loads(response.data)["items"]}


@pytest.mark.timeout(240)
def test_the_reaper_cronjob_fires_by_itself_and_reaps_only_what_is_due(
    api_client: client.ApiClient, kubectl: Kubectl, kubectl_binary: Path, tmp_path: Path
) -> None:
    namespace = create_namespace(api_client, "deploy-real-node-reaper")
    definitions = JobDefinitions.from_yaml(definitions_for_the_test())
    signature = env_of(reaper_container(render(kubectl_binary, PLAIN)))["JOB_SIGNATURE"]
    ours = JobManager(namespace, JobSigner(signature), definitions, api=KubeApi(api_client))
    theirs = JobManager(namespace, JobSigner("someone-else"), definitions, api=KubeApi(api_client))
    installation: Installation | None = None
    try:
        due = submit(ours, "script", script="true")  # retention 0: due once finished
        marked = submit(ours, "hello", message="kept an hour")  # the sample keeps it 3600 s
        running = submit(ours, "script", script="sleep 300")
        foreign = submit(theirs, "script", script="true")  # due, but not ours to reap
        wait_for(
            lambda: all(
                is_terminal(job)
                for job in (ours.read_job(due), ours.read_job(marked), theirs.read_job(foreign))
            ),
            timeout=JOB_TIMEOUT,
            what="the finished jobs finished",
        )
        # Only now the CronJob, so its first run finds the jobs as they are meant to be.
        installation = install_plain(
            kubectl,
            kubectl_binary,
            namespace,
            tmp_path / "plain",
            reaper_schedule="* * * * *",
            definitions=definitions_for_the_test(),
        )
        cronjob = reaper_cronjob(installation.manifests)
        batch = client.BatchV1Api(api_client)

        def reaper_job_completed() -> Any:
            runs = batch.list_namespaced_job(
                namespace, label_selector="app.kubernetes.io/name=jobfn-reaper"
            ).items
            return next((job for job in runs if job.status.succeeded), None)

        run = wait_for(reaper_job_completed, timeout=130, interval=1, what="a reaper run Complete")
        log = kubectl("logs", "-n", namespace, f"job/{run.metadata.name}").stdout
        [reaper_pod] = (
            client.CoreV1Api(api_client)
            .list_namespaced_pod(namespace, label_selector=f"job-name={run.metadata.name}")
            .items
        )
        jobs = live_jobs(api_client, namespace)
    finally:
        if installation is not None:
            uninstall_cluster_scoped(kubectl, installation)
        client.CoreV1Api(api_client).delete_namespace(namespace, propagation_policy="Background")

    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    [owner] = run.metadata.owner_references
    assert (owner.kind, owner.name) == ("CronJob", cronjob["metadata"]["name"])
    pod_spec = run.spec.template.spec
    assert reaper_pod.spec.node_name == NODE_NAME
    assert pod_spec.service_account_name == "jobfn-reaper"
    assert pod_spec.security_context.run_as_non_root
    assert pod_spec.containers[0].security_context.read_only_root_filesystem
    assert pod_spec.containers[0].image == reaper_container(installation.manifests)["image"]
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    summaries = [line for line in lines if "deleted" in line and "seen" in line]
    assert summaries, log
    summary = summaries[-1]
    assert (summary["seen"], summary["marked"], summary["deleted"], summary["errors"]) == (3, 1, 1, 0), log
    assert due in [line.get("subject") for line in lines if line.get("type") == "dev.jobfn.job.archived"]
    assert due not in jobs or jobs[due]["metadata"].get("deletionTimestamp")
    [complete] = [c for c in jobs[marked]["status"]["conditions"] if c["type"] == "Complete"]
    finished_at = datetime.fromisoformat(complete["lastTransitionTime"]).timestamp()
    assert int(jobs[marked]["metadata"]["annotations"][DELETION_TIME_ANNOTATION]) == finished_at + 3600
    for kept in (running, foreign):
        assert DELETION_TIME_ANNOTATION not in (jobs[kept]["metadata"].get("annotations") or {})
    assert jobs[foreign]["metadata"]["labels"][MANAGED_BY_LABEL] == "someone-else"
    assert jobs[running]["status"].get("active") == 1
