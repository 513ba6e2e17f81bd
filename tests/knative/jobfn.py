"""deploy/ installed for real with `kubectl apply -k`, into a namespace of its own.

The overlay (written per namespace) changes only what a test needs: the namespace and a
suffix for cluster-scoped names (tests/deploy's write_overlay, which also suspends the
reaper's CronJob: tests run it when they choose), the test definitions beside the
samples, images tagged by content (below), Knative's shortest autoscaling windows, a
broker that retries longer and dead-letters to a recorder, and Triggers that hand the
function's replies, archive records and state changes to that recorder.

Images: the node's containerd is shared by every worktree on this machine, and each
imports its own build of jobfn-function:0.1.0 under that one name. The overlay names
this worktree's build by its content key (dev.local/jobfn-function:<key>), so a revision
never runs another worktree's code; Serving never resolves dev.local tags.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.cluster import images as cluster_images
from tests.cluster import localcluster
from tests.deploy.manifests import DEFINITIONS_FILE, DEPLOY, Manifest, render, write_overlay
from tests.helpers import Kubectl

HERE = Path(__file__).resolve().parent
TEST_DEFINITIONS = HERE.parents[0] / "data" / "definitions" / "knative.yaml"
RECORDER_SCRIPT = HERE / "data" / "recorder.py"
# Knative's minimum stable window: a revision without requests for this long scales to zero
# (after config-autoscaler's scale-to-zero-grace-period, 6 s here).
WINDOW = "6s"
# The panic window is a share of the stable one: 10 % is 6 s at Knative's default 60 s window,
# but 0.6 s at the tests' 6 s, over which a moment's overlap reads as a burst; 100 % keeps the
# default's 6 s.
PANIC_WINDOW_PERCENTAGE = "100"
AUDIENCE = "jobfn"  # deploy/components/broker-oidc
# What the recorder is subscribed to: the function's replies, the reaper's records, and the
# ApiServerSource's job updates.
RECORDED_TYPES = (
    "dev.jobfn.job.submitted",
    "dev.jobfn.job.archived",
    "dev.jobfn.job.state-changed",
    "dev.knative.apiserver.resource.update",
)


@dataclass(frozen=True)
class ProjectImages:
    """This worktree's function and reaper images, by content-keyed names."""

    function: str
    reaper: str


def project_images() -> ProjectImages:
    """Build (if needed) and import the project's images; tag them by their content key."""
    address = localcluster.containerd_address()
    catalog = {image.name: image for image in cluster_images.images()}
    wanted = {name: catalog[name] for name in ("function", "reaper")}
    refs = {name: f"dev.local/jobfn-{name}:{image.key[:16]}" for name, image in wanted.items()}
    for _ in range(3):  # another worktree may import its own build under the shared name meanwhile
        present = cluster_images.containerd_image_keys(address)
        missing = [name for name, image in wanted.items() if present.get(refs[name]) != image.key]
        if not missing:
            return ProjectImages(refs["function"], refs["reaper"])
        cluster_images.ensure_images(address, catalog=[wanted[name] for name in missing])
        for name in missing:
            image = wanted[name]
            ctr = ["ctr", "--address", str(address), "--namespace", "k8s.io", "images"]
            subprocess.run(
                [*ctr, "tag", "--force", image.refs[0], refs[name]], check=True, capture_output=True
            )
            label = f"{cluster_images.KEY_LABEL}={image.key}"
            subprocess.run([*ctr, "label", refs[name], label], check=True, capture_output=True)
    raise RuntimeError(f"could not tag this worktree's images as {sorted(refs.values())}")


def definitions_for_the_tests() -> str:
    document = yaml.safe_load(DEFINITIONS_FILE.read_text())
    document["definitions"] += yaml.safe_load(TEST_DEFINITIONS.read_text())["definitions"]
    return yaml.safe_dump(document, sort_keys=False)


def _trigger(name: str, event_type: str, subscriber: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": name},
        "spec": {
            "broker": "default",
            "filter": {"attributes": {"type": event_type}},
            "subscriber": subscriber,
        },
    }


def extra_objects() -> list[Manifest]:
    """The recorder (Deployment + Service) and the Triggers the tests add."""
    recorder_ref = {"ref": {"apiVersion": "v1", "kind": "Service", "name": "recorder"}}
    function_ref = {
        "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "jobfn"},
        "audience": AUDIENCE,
    }
    labels = {"app.kubernetes.io/name": "recorder"}
    recorder = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "recorder", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "recorder",
                            "image": "python:3.11-slim",
                            "command": ["python3", "/recorder/recorder.py", "8080"],
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                            "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}},
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": 10001,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "script", "mountPath": "/recorder"}],
                        }
                    ],
                    "volumes": [{"name": "script", "configMap": {"name": "recorder-script"}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "recorder"},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    triggers = [_trigger(f"recorder-{t.rsplit('.', 1)[-1]}", t, recorder_ref) for t in RECORDED_TYPES]
    triggers += [
        _trigger(f"jobfn-test-{name}", f"dev.jobfn.test.{name}", function_ref)
        for name in ("simulated", "one-at-a-time", "quick")
    ]
    return [recorder, service, *triggers]


def write_test_overlay(directory: Path, namespace: str, images: ProjectImages) -> Path:
    """The kustomization the tests apply with `kubectl apply -k` (see the module's docstring)."""
    base = write_overlay(
        directory / "base",
        namespace,
        suffix=f"-{namespace}",
        base=DEPLOY,
        definitions=definitions_for_the_tests(),
    )
    (directory / "test-objects.yaml").write_text(yaml.safe_dump_all(extra_objects()))
    (directory / "recorder.py").write_text(RECORDER_SCRIPT.read_text())
    window = [
        {
            "op": "add",
            "path": "/spec/template/metadata/annotations/autoscaling.knative.dev~1window",
            "value": WINDOW,
        },
        {
            "op": "add",
            "path": "/spec/template/metadata/annotations/autoscaling.knative.dev~1panic-window-percentage",
            "value": PANIC_WINDOW_PERCENTAGE,
        },
    ]
    delivery = {
        "retry": 8,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT0.5S",
        "deadLetterSink": {
            "ref": {"apiVersion": "v1", "kind": "Service", "name": "recorder"},
            "uri": "/dead-letter",
        },
    }
    function_name, function_tag = images.function.rsplit(":", 1)
    reaper_name, reaper_tag = images.reaper.rsplit(":", 1)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [os.path.relpath(base, directory), "test-objects.yaml"],
        "configMapGenerator": [
            {"name": "recorder-script", "files": ["recorder.py"], "options": {"disableNameSuffixHash": True}}
        ],
        "images": [
            {"name": "jobfn-function", "newName": function_name, "newTag": function_tag},
            {"name": "jobfn-reaper", "newName": reaper_name, "newTag": reaper_tag},
        ],
        "patches": [
            {"target": {"group": "serving.knative.dev", "kind": "Service"}, "patch": json.dumps(window)},
            {
                "target": {"group": "eventing.knative.dev", "kind": "Broker"},
                "patch": json.dumps([{"op": "replace", "path": "/spec/delivery", "value": delivery}]),
            },
        ],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


def rendered(kubectl_binary: Path, overlay: Path) -> list[Manifest]:
    return render(kubectl_binary, overlay)


def remove_cluster_scoped(kubectl: Kubectl, manifests: list[Manifest]) -> None:
    """Cluster-scoped objects outlive their namespace: remove them with it."""
    cluster_scoped = [m for m in manifests if m["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    listed = {"apiVersion": "v1", "kind": "List", "items": cluster_scoped}
    kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input=json.dumps(listed))
