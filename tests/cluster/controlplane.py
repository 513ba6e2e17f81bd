"""Command lines and configuration of the local cluster's control plane and KWOK.

Pure functions of the state dir, the ports and the binaries' directory; localcluster.py
starts them. The real node's are in node.py.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster import netns

HERE = Path(__file__).resolve().parent
KWOK_STAGES = HERE / "kwok-stages.yaml"
SIMULATED_LOG = HERE / "simulated-pod.log"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# Pods must tolerate this to land on a KWOK node (see tests/helpers.py: SIMULATED_NODE).
SIMULATED_TAINT = {"key": "jobfn.dev/simulated", "value": "true", "effect": "NoSchedule"}
KWOK_NODE_LABELS = {"type": "kwok"}  # beside the usual kubernetes.io/ ones
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CIDR = "10.96.0.0/16"
KWOK_POD_CIDR = "10.244.128.0/17"  # the real node's pods use 10.244.0.0/24
# Benchmarks create 10,000 Jobs: the node must never be the bottleneck.
NODE_RESOURCES = {"cpu": "1000", "memory": "1Ti", "pods": "110000"}


@dataclass(frozen=True)
class Ports:
    """Loopback ports, all derived from the apiserver port so clusters can coexist."""

    apiserver: int
    etcd: int
    etcd_peer: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def from_env(cls) -> Ports:
        base = int(os.environ.get("JOBFN_APISERVER_PORT", "16443"))
        return cls(*range(base, base + 6))

    def by_component(self) -> dict[str, int]:
        return {
            "kube-apiserver": self.apiserver,
            "etcd": self.etcd,
            "etcd (peer)": self.etcd_peer,
            "kube-controller-manager": self.controller_manager,
            "kube-scheduler": self.scheduler,
            "kwok": self.kwok,
        }


def _pki(state: Path, name: str) -> Path:
    return state / "pki" / name


def etcd_argv(state: Path, bins: Path, ports: Ports) -> list[str]:
    client, peer = f"http://127.0.0.1:{ports.etcd}", f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(bins / "etcd"),
        "--name=jobfn",
        f"--data-dir={state / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=jobfn={peer}",
        "--initial-cluster-state=new",
        # Throwaway data: skipping fsync keeps 10,000-Job benchmarks off the disk's latency.
        "--unsafe-no-fsync=true",
    ]


def apiserver_argv(state: Path, bins: Path, ports: Ports, in_netns: bool) -> list[str]:
    return [
        str(bins / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd}",
        f"--secure-port={ports.apiserver}",
        *_apiserver_address_flags(in_netns),
        f"--cert-dir={state / 'pki'}",
        f"--tls-cert-file={_pki(state, 'serving.crt')}",
        f"--tls-private-key-file={_pki(state, 'serving.key')}",
        f"--client-ca-file={_pki(state, 'ca.crt')}",
        "--authorization-mode=Node,RBAC",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={_pki(state, 'sa.pub')}",
        f"--service-account-signing-key-file={_pki(state, 'sa.key')}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # `kubectl logs` goes apiserver -> node's kubelet endpoint: the kubelet's, or kwok's server.
        f"--kubelet-client-certificate={_pki(state, 'apiserver-kubelet-client.crt')}",
        f"--kubelet-client-key={_pki(state, 'apiserver-kubelet-client.key')}",
        f"--kubelet-certificate-authority={_pki(state, 'ca.crt')}",
        "--kubelet-preferred-address-types=InternalIP",
        # Request-header (aggregation) auth; without it every component logs "missing CA bundle".
        f"--requestheader-client-ca-file={_pki(state, 'ca.crt')}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={_pki(state, 'front-proxy-client.crt')}",
        f"--proxy-client-key-file={_pki(state, 'front-proxy-client.key')}",
        "--allow-privileged=true",
        "--profiling=false",
        "--max-requests-inflight=1000",
        "--max-mutating-requests-inflight=500",
    ]


def _apiserver_address_flags(in_netns: bool) -> list[str]:
    if in_netns:
        # In the cluster's namespace: pods reach it through the kubernetes Service at the node's address.
        return ["--bind-address=0.0.0.0", f"--advertise-address={netns.NODE_IP}"]
    # Loopback is not a valid Endpoints address, so don't publish one for the kubernetes Service.
    return ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none"]


def _serving_flags(state: Path, port: int, component: str) -> list[str]:
    kubeconfig = state / f"{component}.kubeconfig"
    return [
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={_pki(state, 'serving.crt')}",
        f"--tls-private-key-file={_pki(state, 'serving.key')}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--profiling=false",
    ]


def controller_manager_argv(state: Path, bins: Path, ports: Ports) -> list[str]:
    return [
        str(bins / "kube-controller-manager"),
        f"--kubeconfig={state / 'kube-controller-manager.kubeconfig'}",
        *_serving_flags(state, ports.controller_manager, "kube-controller-manager"),
        "--leader-elect=false",
        # All default controllers: job, cronjob, garbage collector, ttl-after-finished,
        # namespace, serviceaccount(-token), replicaset, deployment, node lifecycle, ...
        "--controllers=*",
        "--use-service-account-credentials=true",
        # The default is under /usr/libexec, which it would create on the host.
        f"--flex-volume-plugin-dir={state / 'flexvolume'}",
        f"--service-account-private-key-file={_pki(state, 'sa.key')}",
        f"--root-ca-file={_pki(state, 'ca.crt')}",
        f"--cluster-signing-cert-file={_pki(state, 'ca.crt')}",
        f"--cluster-signing-key-file={_pki(state, 'ca.key')}",
        # Defaults (20 qps) would throttle benchmarks that create thousands of Jobs.
        "--kube-api-qps=1000",
        "--kube-api-burst=2000",
    ]


def scheduler_argv(state: Path, bins: Path, ports: Ports) -> list[str]:
    config = state / "kube-scheduler.config.json"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "clientConnection": {
                    "kubeconfig": str(state / "kube-scheduler.kubeconfig"),
                    "qps": 1000,
                    "burst": 2000,
                },
                "leaderElection": {"leaderElect": False},
            },
            indent=2,
        )
    )
    return [
        str(bins / "kube-scheduler"),
        f"--config={config}",
        *_serving_flags(state, ports.scheduler, "kube-scheduler"),
    ]


def kwok_argv(state: Path, bins: Path, ports: Ports) -> list[str]:
    return [
        str(bins / "kwok"),
        f"--kubeconfig={state / 'kwok.kubeconfig'}",
        f"--config={KWOK_STAGES}",
        f"--config={_write_kwok_config(state)}",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
        "--node-ip=127.0.0.1",
        f"--node-port={ports.kwok}",
        f"--server-address=127.0.0.1:{ports.kwok}",
        f"--tls-cert-file={_pki(state, 'serving.crt')}",
        f"--tls-private-key-file={_pki(state, 'serving.key')}",
        f"--cidr={KWOK_POD_CIDR}",
        # Node liveness via a Lease, renewed by kwok, like a kubelet.
        "--node-lease-duration-seconds=40",
        # INFO logs every pod patch: ~40k lines for a 10,000-Job benchmark.
        "--v=WARN",
    ]


def _write_kwok_config(state: Path) -> Path:
    """The ClusterLogs rule serving the simulated log to every pod.

    No KwokConfiguration here on purpose: kwok v0.8.0 does not default one read from
    --config (it fails on a zero lease parallelism), while its built-in one is fine.
    The log is copied into the cluster's state: kwok reads it on every ``kubectl logs``, and
    the checkout that started the cluster may be gone by then (CI's clones were).
    """
    log = state / SIMULATED_LOG.name
    shutil.copyfile(SIMULATED_LOG, log)
    logs = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterLogs",
        "metadata": {"name": "jobfn-simulated-logs"},
        "spec": {"logs": [{"logsFile": str(log)}]},
    }
    path = state / "kwok.config.yaml"
    path.write_text(json.dumps(logs, indent=2) + "\n")
    return path


def kwok_env(state: Path) -> dict[str, str]:
    # kwok also loads ~/.kwok/kwok.yaml if present; a private HOME keeps a user's config out.
    home = state / "kwok-home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home)}


def kwok_node_manifest(name: str, kwok_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **KWOK_NODE_LABELS,
            },
        },
        "spec": {"taints": [SIMULATED_TAINT]},
        "status": {
            "capacity": NODE_RESOURCES,
            "allocatable": NODE_RESOURCES,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kwok_port}},
        },
    }
