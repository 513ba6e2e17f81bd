"""`kubectl kustomize deploy/` renders, and what it renders is the installation we mean.

These need the kubectl binary only, no API server.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobfn._contract import DEFINITION_LABEL
from jobfn._definitions import JobDefinitions
from tests.deploy.manifests import (
    CLUSTER_SCOPED_KINDS,
    DEFINITIONS_FILE,
    DEPLOY,
    PLAIN,
    ROOT,
    Manifest,
    definitions_text,
    env_of,
    find,
    function_account,
    function_container,
    function_deployment,
    is_knative,
    knative_service,
    one,
    reaper_account,
    reaper_container,
    reaper_cronjob,
    render,
)

NAMESPACE = "jobfn"


def test_deploy_renders_the_whole_installation_into_the_jobs_namespace(rendered: list[Manifest]) -> None:
    kinds = sorted((m["kind"], m["metadata"]["name"]) for m in rendered)

    assert kinds == sorted(
        [
            ("Namespace", NAMESPACE),
            ("ServiceAccount", "jobfn-function"),
            ("Role", "jobfn-function"),
            ("RoleBinding", "jobfn-function"),
            ("ClusterRole", "jobfn-function-tokenreview"),
            ("ClusterRoleBinding", "jobfn-function-tokenreview"),
            ("ConfigMap", "jobfn-definitions"),
            ("Service", "jobfn"),
            ("ServiceAccount", "jobfn-reaper"),
            ("Role", "jobfn-reaper"),
            ("RoleBinding", "jobfn-reaper"),
            ("CronJob", "jobfn-reaper"),
            ("Broker", "default"),
            ("Trigger", "jobfn-hello"),
            ("Trigger", "jobfn-pi"),
            ("SinkBinding", "jobfn-reaper"),
            ("ServiceAccount", "jobfn-job-changes"),
            ("Role", "jobfn-job-changes"),
            ("RoleBinding", "jobfn-job-changes"),
            ("ApiServerSource", "jobfn-job-changes"),
            ("Trigger", "jobfn-job-changes"),
        ]
    )
    namespaced = [m for m in rendered if m["kind"] not in CLUSTER_SCOPED_KINDS]
    assert {m["metadata"].get("namespace") for m in namespaced} == {NAMESPACE}


def _without_state_events(manifest: Manifest) -> Manifest:
    if manifest["kind"] != "CronJob":
        return manifest
    copied = copy.deepcopy(manifest)
    [container] = copied["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    container["env"] = [e for e in container["env"] if e["name"] != "JOBFN_REAPER_STATE_EVENTS"]
    return copied


def test_plain_is_the_whole_installation_without_its_knative_objects(
    rendered: list[Manifest], kubectl_binary: Path
) -> None:
    def identity(manifest: Manifest) -> tuple[str, str]:
        return manifest["kind"], manifest["metadata"]["name"]

    plain = render(kubectl_binary, PLAIN)

    # The ApiServerSource's own ServiceAccount and Role serve only that Knative object, and
    # state events need eventing/'s SinkBinding: plain/ has neither.
    without_knative = [
        _without_state_events(m)
        for m in rendered
        if not is_knative(m) and m["metadata"]["name"] != "jobfn-job-changes"
    ]
    assert sorted(plain, key=identity) == sorted(without_knative, key=identity)


def test_the_deployment_made_for_plain_runs_the_knative_services_pod(rendered: list[Manifest]) -> None:
    deployment, service = function_deployment(rendered)
    pod_spec = deployment["spec"]["template"]["spec"]
    [container] = pod_spec["containers"]
    knative = function_container(rendered)

    assert {k: v for k, v in container.items() if k not in ("readinessProbe", "livenessProbe", "env")} == {
        k: v for k, v in knative.items() if k not in ("readinessProbe", "livenessProbe", "env")
    }
    assert env_of(container) == {**env_of(knative), "PORT": "8080"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert pod_spec["serviceAccountName"] == function_account(rendered)
    assert pod_spec["volumes"] == knative_service(rendered)["spec"]["template"]["spec"]["volumes"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080}]


def test_the_only_cluster_wide_grant_is_tokenreview_create_for_the_function(rendered: list[Manifest]) -> None:
    [cluster_role] = find(rendered, "ClusterRole")
    [binding] = find(rendered, "ClusterRoleBinding")

    assert cluster_role["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
    ]
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": function_account(rendered), "namespace": NAMESPACE}
    ]


def test_the_function_is_a_hardened_scale_to_zero_knative_service(rendered: list[Manifest]) -> None:
    template = knative_service(rendered)["spec"]["template"]
    container = function_container(rendered)

    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert template["spec"]["serviceAccountName"] == "jobfn-function"
    assert env_of(container)["JOBFN_AUTH"] == "tokenreview"


def test_the_function_reads_the_sample_definitions_from_the_mounted_config_map(
    rendered: list[Manifest],
) -> None:
    text = definitions_text(rendered)

    assert text == DEFINITIONS_FILE.read_text()
    assert [d.name for d in JobDefinitions.from_yaml(text)] == ["hello", "pi"]


def test_knative_is_given_no_field_it_refuses_by_default(rendered: list[Manifest]) -> None:
    # Default Knative refuses fieldRef (kubernetes.podspec-fieldref), pod-level securityContext
    # (kubernetes.podspec-securitycontext), a probe's port other than the serving port, and
    # more than one port; the CRD schema used by the dry run does not know these rules.
    spec = knative_service(rendered)["spec"]["template"]["spec"]
    container = function_container(rendered)

    assert not any("valueFrom" in item for item in container["env"])
    assert "securityContext" not in spec
    assert all("port" not in container[probe]["httpGet"] for probe in ("readinessProbe", "livenessProbe"))
    assert len(container["ports"]) == 1
    assert {volume["name"]: sorted(set(volume) - {"name"}) for volume in spec["volumes"]} == {
        "definitions": ["configMap"],
        "tmp": ["emptyDir"],  # enabled by default (kubernetes.podspec-volumes-emptydir)
    }


def test_function_and_reaper_share_the_signature_and_the_definitions(rendered: list[Manifest]) -> None:
    function_env, reaper_env = env_of(function_container(rendered)), env_of(reaper_container(rendered))
    pod = reaper_cronjob(rendered)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in reaper_container(rendered)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    assert function_env["JOB_SIGNATURE"] == reaper_env["JOB_SIGNATURE"]
    assert reaper_env["JOB_DEFINITIONS_CONFIG_PATH"] == function_env["JOB_DEFINITIONS_CONFIG_PATH"]
    [name] = [
        n for n, path in mounts.items() if reaper_env["JOB_DEFINITIONS_CONFIG_PATH"].startswith(path + "/")
    ]
    assert volumes[name]["configMap"]["name"] == "jobfn-definitions"
    assert pod["serviceAccountName"] == reaper_account(rendered)


def test_a_trigger_delivers_each_event_type_of_the_definitions_to_the_function(
    rendered: list[Manifest],
) -> None:
    definitions = JobDefinitions.from_yaml(definitions_text(rendered))
    event_types = {event_type for d in definitions for event_type in d.event_types}
    triggers = find(rendered, "Trigger", "eventing.knative.dev")
    broker = one(rendered, "Broker", "eventing.knative.dev")
    service = knative_service(rendered)

    # ... and the jobs' own changes, from the ApiServerSource (job_changed in function/_events.py)
    assert sorted(t["spec"]["filter"]["attributes"]["type"] for t in triggers) == sorted(
        [*event_types, "dev.knative.apiserver.resource.update"]
    )
    for trigger in triggers:
        assert set(trigger["spec"]["filter"]["attributes"]) == {"type"}
        assert trigger["spec"]["broker"] == broker["metadata"]["name"]
        assert trigger["spec"]["subscriber"]["ref"] == {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": service["metadata"]["name"],
        }


def test_the_sink_binding_reaches_the_reapers_jobs_and_no_submitted_job(rendered: list[Manifest]) -> None:
    binding = one(rendered, "SinkBinding", "sources.knative.dev")
    selector = binding["spec"]["subject"]["selector"]
    reaper_job_labels = reaper_cronjob(rendered)["spec"]["jobTemplate"]["metadata"]["labels"]

    assert binding["spec"]["subject"]["apiVersion"] == "batch/v1"
    assert binding["spec"]["subject"]["kind"] == "Job"
    assert _selects(selector, reaper_job_labels)
    assert not _selects(selector, {**reaper_job_labels, DEFINITION_LABEL: "hello"})
    assert binding["spec"]["sink"]["ref"]["kind"] == "Broker"
    assert binding["spec"]["sink"]["ref"]["name"] == one(rendered, "Broker")["metadata"]["name"]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    matches = all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        if operator == "DoesNotExist":
            matches &= key not in labels
        elif operator == "Exists":
            matches &= key in labels
        elif operator == "In":
            matches &= labels.get(key) in expression["values"]
        else:
            matches &= labels.get(key) not in expression["values"]
    return matches


def test_a_name_prefix_overlay_renames_every_reference_along(kubectl_binary: Path, tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"namePrefix": "team-", "resources": [os.path.relpath(DEPLOY, tmp_path)]})
    )
    manifests = render(kubectl_binary, tmp_path)
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    service_spec = knative_service(manifests)["spec"]["template"]["spec"]

    assert ("ServiceAccount", service_spec["serviceAccountName"]) in names
    assert ("ConfigMap", service_spec["volumes"][0]["configMap"]["name"]) in names
    for trigger in find(manifests, "Trigger"):
        assert ("Service", trigger["spec"]["subscriber"]["ref"]["name"]) in names
        assert ("Broker", trigger["spec"]["broker"]) in names
    assert ("Broker", one(manifests, "SinkBinding")["spec"]["sink"]["ref"]["name"]) in names
    assert service_spec["serviceAccountName"] == "team-jobfn-function"


# --- images -------------------------------------------------------------------------------------
CONTAINERFILES = {
    "function": DEPLOY / "function" / "Containerfile",
    "reaper": DEPLOY / "reaper" / "Containerfile",
}


@pytest.mark.parametrize("image", sorted(CONTAINERFILES))
def test_each_image_runs_as_the_non_root_user_its_manifest_requires(
    image: str, rendered: list[Manifest]
) -> None:
    text = CONTAINERFILES[image].read_text()
    context = _security_context(rendered, image)
    [user] = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", text, re.MULTILINE)

    assert re.search(r"^FROM python:3\.11-slim(@sha256:[0-9a-f]{64})?\s*$", text, re.MULTILINE)
    assert int(user[0]) != 0
    assert context["runAsUser"] == int(user[0])
    assert context["runAsNonRoot"] is True
    for source in re.findall(r"^COPY\s+(\S+)\s", text, re.MULTILINE):
        assert (ROOT / source).exists(), f"{image}: COPY {source} names nothing in the repository"


def _security_context(rendered: list[Manifest], image: str) -> dict[str, Any]:
    """The container's effective securityContext (the container's fields win over the pod's)."""
    if image == "function":
        context: dict[str, Any] = function_container(rendered)["securityContext"]  # Knative: container only
        return context
    pod = reaper_cronjob(rendered)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return {**(pod.get("securityContext") or {}), **reaper_container(rendered)["securityContext"]}


def test_the_function_image_serves_handle_from_function_main() -> None:
    text = CONTAINERFILES["function"].read_text()
    [entrypoint] = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, re.MULTILINE)
    argv = yaml.safe_load(entrypoint)
    source = ROOT / argv[argv.index("--source") + 1]

    assert argv[0] == "functions-framework"
    assert argv[argv.index("--target") + 1] == "handle"
    assert re.search(r"^def handle\(", source.read_text(), re.MULTILINE)


def test_the_config_map_component_lets_both_accounts_read_config_maps_and_nothing_else(
    kubectl_binary: Path, tmp_path: Path
) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "namespace": NAMESPACE,  # components come after deploy/'s own namespace transformer
                "resources": [os.path.relpath(DEPLOY, tmp_path)],
                "components": [os.path.relpath(DEPLOY / "components" / "template-config-maps", tmp_path)],
            }
        )
    )
    manifests = render(kubectl_binary, tmp_path)
    [role] = [r for r in find(manifests, "Role") if r["metadata"]["name"] == "jobfn-template-config-maps"]
    [binding] = [
        b for b in find(manifests, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"]
    ]

    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    assert sorted(s["name"] for s in binding["subjects"]) == sorted(
        [function_account(manifests), reaper_account(manifests)]
    )
    assert {s["namespace"] for s in binding["subjects"]} == {NAMESPACE}


def test_the_registration_component_grants_config_map_writes_only_in_its_own_namespace(
    kubectl_binary: Path, tmp_path: Path
) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(DEPLOY, tmp_path)],
                "components": [os.path.relpath(DEPLOY / "components" / "registration", tmp_path)],
            }
        )
    )
    manifests = render(kubectl_binary, tmp_path)
    writes = [
        (role["metadata"].get("namespace"), rule["verbs"])
        for role in find(manifests, "Role")
        for rule in role["rules"]
        if "configmaps" in rule["resources"] and set(rule["verbs"]) - {"get", "list", "watch"}
    ]
    env = env_of(function_container(manifests))
    [binding] = [
        b for b in find(manifests, "RoleBinding") if b["metadata"]["name"] == "jobfn-registered-definitions"
    ]

    assert writes == [("jobfn-registered", ["create", "get", "list", "patch"])]
    assert env["JOBFN_REGISTRATION"] == "on"
    assert env["JOBFN_REGISTRATION_NAMESPACE"] == "jobfn-registered"
    assert binding["metadata"]["namespace"] == "jobfn-registered"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": function_account(manifests), "namespace": "jobfn"}
    ]


def test_func_yaml_deploys_the_function_as_deploy_does(rendered: list[Manifest]) -> None:
    func = yaml.safe_load((ROOT / "func.yaml").read_text())
    template = knative_service(rendered)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    container = function_container(rendered)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_maps = {
        mounts[v["name"]]: v["configMap"]["name"] for v in template["spec"]["volumes"] if "configMap" in v
    }
    func_env = {e["name"]: e["value"] for e in func["run"]["envs"] if e["value"]}  # "" is unset
    scale = func["deploy"]["options"]["scale"]

    assert func_env == env_of(container)
    assert {v["path"]: v["configMap"] for v in func["run"]["volumes"]} == config_maps
    assert func["deploy"]["serviceAccountName"] == template["spec"]["serviceAccountName"]
    assert func["deploy"]["healthEndpoints"] == {
        "liveness": container["livenessProbe"]["httpGet"]["path"],
        "readiness": container["readinessProbe"]["httpGet"]["path"],
    }
    assert (str(scale["min"]), str(scale["max"]), str(scale["target"])) == (
        annotations["autoscaling.knative.dev/min-scale"],
        annotations["autoscaling.knative.dev/max-scale"],
        annotations["autoscaling.knative.dev/target"],
    )
    # As many server threads as requests Knative sends a pod at once: none wait in a queue.
    assert env_of(container)["THREADS"] == annotations["autoscaling.knative.dev/target"]
