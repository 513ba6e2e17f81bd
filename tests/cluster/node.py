"""The local cluster's real node: containerd, kubelet, kube-proxy and CoreDNS.

They run in the cluster's network namespace (see netns.py) beside the control plane,
with every file under ``<state>/node/``. The settings below are the ones this kind of
machine needs (cgroup v1, no CAP_SYS_RESOURCE, no registry); /work/shared/REAL-NODE.md
has the story of each. Pods land on this node unless they tolerate the KWOK nodes' taint.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.cluster import netns

NODE_NAME = "jobfn-node"
NODE_POD_CIDR = "10.244.0.0/24"  # kwok's simulated pods take addresses from 10.244.128.0/17
CLUSTER_DOMAIN = "cluster.local"
DNS_IP = netns.NODE_IP  # CoreDNS serves on the node's address; kubelet's clusterDNS points there
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
PROXY_HEALTHZ_PORT = 10256
COREDNS_READY_PORT = 8181
CNI_BIN_DIR = "/usr/lib/cni"
RUNC = "/usr/sbin/runc"
# kubelet sets these host-wide sysctls on start; it gets private copies holding the values it wants.
KUBELET_SYSCTLS = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}
# Debian packages the node needs, by a command each provides.
PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "socat": "socat",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "nsenter": "util-linux",
    "ip": "iproute2",
    f"{CNI_BIN_DIR}/bridge": "containernetworking-plugins",
}
SHIM = "containerd-shim-runc-v2"


class NodeError(RuntimeError):
    """The real node could not be prepared or cleaned up."""


def root(state_dir: Path) -> Path:
    return state_dir / "node"


def containerd_socket(state_dir: Path) -> Path:
    return root(state_dir) / "containerd" / "containerd.sock"


def kubelet_dir(state_dir: Path) -> Path:
    return root(state_dir) / "kubelet"


def cgroup_name(state_dir: Path) -> str:
    """The cgroup (in every v1 hierarchy) holding this cluster's pods: one per cluster."""
    return netns.name_for(state_dir)


def ensure_packages() -> None:
    """Install the Debian packages the node needs when one is missing (CI starts on fresh machines)."""
    missing = sorted({pkg for cmd, pkg in PACKAGES.items() if not (shutil.which(cmd) or Path(cmd).exists())})
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            raise NodeError(f"{' '.join(argv)} failed; the real node needs {', '.join(missing)}")


# --- configuration files -------------------------------------------------------


def write_configs(state_dir: Path, pause_image: str, image_store: Path) -> None:
    write_containerd_config(state_dir, pause_image, image_store)
    write_cni_config(state_dir)
    write_kubelet_config(state_dir, state_dir / "pki")
    write_kube_proxy_config(state_dir)
    write_corefile(state_dir)


def write_containerd_config(state_dir: Path, pause_image: str, image_store: Path) -> Path:
    """containerd's config; its root (images, snapshots, metadata) is ``image_store``, outside the state dir.

    Importing the images takes most of a minute, so they outlive `down`: only the runtime
    state (tasks, mounts, runc's) lives in the state dir. Containers of a previous run
    that are still in the metadata belong to pods the new cluster never had: the kubelet
    removes them like after a node reboot.
    """
    base = root(state_dir) / "containerd"
    (root(state_dir) / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    text = f"""version = 2
root = "{image_store}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{containerd_socket(state_dir)}"
[ttrpc]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"
[{cri}]
  sandbox_image = "{pause_image}"
  # No CAP_SYS_RESOURCE here: oom_score_adj may not go below the runtime's own.
  restrict_oom_score_adj = true
  # Pod network namespaces under our state, not /var/run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{RUNC}"
  Root = "{root(state_dir) / "runc"}"
  SystemdCgroup = false
[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{root(state_dir) / "cni" / "net.d"}"
  max_conf_num = 1
"""
    path = base / "config.toml"
    base.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_cni_config(state_dir: Path) -> None:
    conf = {
        "cniVersion": "1.0.0",
        "name": "jobfn-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": NODE_POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    # Per cluster: the default /var/lib/cni/networks would be shared by two clusters.
                    "dataDir": str(root(state_dir) / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (root(state_dir) / "cni" / "net.d" / "10-jobfn.conflist").write_text(json.dumps(conf, indent=2) + "\n")


def write_kubelet_config(state_dir: Path, pki: Path) -> Path:
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "serving.crt"),
        "tlsPrivateKeyFile": str(pki / "serving.key"),
        "port": KUBELET_PORT,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "containerRuntimeEndpoint": f"unix://{containerd_socket(state_dir)}",
        # cgroup v1 only, cgroupfs (no systemd here), pods in a cgroup of their own per cluster.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{cgroup_name(state_dir)}",
        "oomScoreAdj": 0,  # lowering it needs CAP_SYS_RESOURCE
        "failSwapOn": False,
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [DNS_IP],
        "resolvConf": "",  # pods see cluster DNS only, none of the host's search domains
        "podCIDR": NODE_POD_CIDR,
        "podLogsDir": str(root(state_dir) / "pod-logs"),
        "volumePluginDir": str(kubelet_dir(state_dir) / "volume-plugins"),
        "serializeImagePulls": False,
        # Every image is imported, none can be pulled back: never garbage-collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "registerNode": True,
        "rotateCertificates": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "nodeStatusUpdateFrequency": "5s",
        "shutdownGracePeriod": "0s",
    }
    path = root(state_dir) / "kubelet-config.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def write_kube_proxy_config(state_dir: Path) -> Path:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(state_dir / "kube-proxy.kubeconfig")},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": "10.244.0.0/16",
        "healthzBindAddress": f"127.0.0.1:{PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": "127.0.0.1:10249",
        # Zero leaves conntrack's limits and timeouts alone: some of them are host-wide.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
    path = root(state_dir) / "kube-proxy-config.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def write_corefile(state_dir: Path) -> Path:
    # No `forward`: names outside the cluster have nowhere to go from this namespace.
    text = f""".:53 {{
    bind {DNS_IP}
    errors
    ready 127.0.0.1:{COREDNS_READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {state_dir / "coredns.kubeconfig"} jobfn-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""
    path = root(state_dir) / "Corefile"
    path.write_text(text)
    return path


# --- command lines -------------------------------------------------------------


def containerd_argv(state_dir: Path, bins: Path) -> list[str]:
    return ["containerd", f"--config={root(state_dir) / 'containerd' / 'config.toml'}"]


def kubelet_argv(state_dir: Path, bins: Path) -> list[str]:
    """kubelet in a mount namespace of its own, with private copies of the sysctls it rewrites.

    Its root dir is a shared mount (see prepare_mounts), so the volumes it mounts there
    (ServiceAccount tokens, ...) reach containerd in the host's mount namespace.
    """
    sysctl_dir = root(state_dir) / "sysctl"
    binds = " && ".join(
        f"mount --bind {sysctl_dir / name.replace('/', '.')} /proc/sys/{name}" for name in KUBELET_SYSCTLS
    )
    kubelet = [
        str(bins / "kubelet"),
        f"--config={root(state_dir) / 'kubelet-config.json'}",
        f"--kubeconfig={state_dir / 'kubelet.kubeconfig'}",
        f"--root-dir={kubelet_dir(state_dir)}",
        f"--cert-dir={kubelet_dir(state_dir) / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={netns.NODE_IP}",
        "--node-labels=jobfn.dev/node=real",
    ]
    script = f'mount --make-rprivate /proc && {binds} && exec "$@"'
    return ["unshare", "--mount", "--propagation=unchanged", "--", "/bin/sh", "-c", script, "sh", *kubelet]


def kube_proxy_argv(state_dir: Path, bins: Path) -> list[str]:
    return [str(bins / "kube-proxy"), f"--config={root(state_dir) / 'kube-proxy-config.json'}"]


def coredns_argv(state_dir: Path, bins: Path) -> list[str]:
    return [str(bins / "coredns"), "-conf", str(root(state_dir) / "Corefile")]


def containerd_serving(state_dir: Path) -> bool:
    sock = containerd_socket(state_dir)
    if not sock.exists():
        return False
    result = subprocess.run(["ctr", f"--address={sock}", "version"], capture_output=True, check=False)
    return result.returncode == 0


# --- host state: mounts, cgroups, sysctl copies ---------------------------------------


def prepare_host(state_dir: Path) -> None:
    """kubelet root as a shared bind mount, the sysctl copies and the pods' cgroup."""
    kubelet = kubelet_dir(state_dir)
    kubelet.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(kubelet), str(kubelet)], check=True)
    subprocess.run(["mount", "--make-shared", str(kubelet)], check=True)
    sysctl_dir = root(state_dir) / "sysctl"
    sysctl_dir.mkdir(exist_ok=True)
    for name, value in KUBELET_SYSCTLS.items():
        (sysctl_dir / name.replace("/", ".")).write_text(value + "\n")
    for hierarchy in _cgroup_hierarchies():
        group = hierarchy / cgroup_name(state_dir)
        group.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").exists():  # a new cpuset holds no CPUs until given some
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (group / knob).write_text((hierarchy / knob).read_text())


def _cgroup_hierarchies() -> list[Path]:
    base = Path("/sys/fs/cgroup")
    return sorted(
        p for p in base.iterdir() if p.is_dir() and p.name != "unified" and (p / "cgroup.procs").exists()
    )


def kill_pods(state_dir: Path) -> None:
    """SIGKILL every process in the pods' cgroup and the containerd shims, then drop the cgroups."""
    for pid in _pids_in_cgroups(state_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in shim_pids(state_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    for hierarchy in _cgroup_hierarchies():
        group = hierarchy / cgroup_name(state_dir)
        if not group.exists():
            continue
        for directory in sorted((d for d in group.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            _rmdir_when_empty(directory, deadline)
        _rmdir_when_empty(group, deadline)


def _rmdir_when_empty(directory: Path, deadline: float) -> None:
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise NodeError(f"cgroup {directory} still busy") from None
            time.sleep(0.1)


def _pids_in_cgroups(state_dir: Path) -> set[int]:
    pids: set[int] = set()
    for hierarchy in _cgroup_hierarchies():
        group = hierarchy / cgroup_name(state_dir)
        for procs in group.rglob("cgroup.procs") if group.exists() else ():
            with contextlib.suppress(OSError):
                pids.update(int(line) for line in procs.read_text().split())
    return pids


def shim_pids(state_dir: Path) -> list[int]:
    """containerd shims serving our containerd (they outlive it)."""
    marker = str(containerd_socket(state_dir)).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if Path(argv[0].decode()).name == SHIM and marker in argv:
                    found.append(int(proc.name))
    return found


def unmount_all(state_dir: Path) -> None:
    """Lazily unmount everything under the state dir (pod volumes, rootfs, netns, the kubelet bind), deepest first."""
    prefix = f"{state_dir}/"
    for _ in range(5):
        mounts = [
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(prefix)
        ]
        if not mounts:
            return
        for mount in sorted(set(mounts), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    raise NodeError(f"mounts under {state_dir} remain after unmounting")
