"""Knative's and Traefik's images for the real node: each a static Go binary on an empty base.

ko builds Knative's images in its release: the binary at /ko-app/<name> on a distroless
base, run as the numeric non-root user 65532. These are the same minus the base (the
binaries are static, need no libc, CA bundle or shell), made with the cluster's image
machinery (tests/cluster/images.py): one layer each, cached as OCI archives, imported into
the node's containerd under dev.local/ names (Serving never asks a registry about those).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.cluster import images as cluster_images
from tests.cluster import localcluster
from tests.cluster.imagebuild import Buildah, ImageConfig

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
NONROOT = "65532:65532"  # ko's default user: the manifests' runAsNonRoot needs a numeric one
KO_DATA_PATH = "/var/run/ko"  # where ko puts kodata; Knative only reads it for version logs

SERVING_COMMANDS = ("controller", "webhook", "activator", "autoscaler", "queue")
EVENTING_COMMANDS = (
    "controller",
    "webhook",
    "jobsink",
    "mtping",
    "requestreply",
    "apiserver_receive_adapter",
    "auth_proxy",
    "mtchannel_broker",
    "broker/ingress",
    "broker/filter",
    "in_memory/channel_controller",
    "in_memory/channel_dispatcher",
)


@dataclass(frozen=True)
class Binaries:
    """Where tests/knative/build.sh put the binaries, and the releases they are of."""

    knative: Path  # bin/knative-<version>/
    traefik: Path  # bin/traefik-<version>/

    @property
    def knative_version(self) -> str:
        return self.knative.name.removeprefix("knative-")

    @property
    def traefik_version(self) -> str:
        return self.traefik.name.removeprefix("traefik-")


def build() -> Binaries:
    """Run build.sh (a no-op once built); its progress goes to our stderr."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or len(lines) < 2:
        raise RuntimeError(f"{BUILD_SCRIPT} failed (exit {result.returncode})")
    return Binaries(Path(lines[-2]), Path(lines[-1]))


@dataclass(frozen=True)
class Command:
    """One binary and the image made of it."""

    package: str  # as the manifests name it: ko://<package>
    binary: Path
    ref: str


def commands(binaries: Binaries) -> list[Command]:
    found = []
    for project, names in (("serving", SERVING_COMMANDS), ("eventing", EVENTING_COMMANDS)):
        for name in names:
            base = name.rsplit("/", 1)[-1]
            found.append(
                Command(
                    f"knative.dev/{project}/cmd/{name}",
                    binaries.knative / project / base,
                    f"dev.local/knative/{project}/{base.replace('_', '-')}:{binaries.knative_version}",
                )
            )
    found.append(
        Command(
            "github.com/traefik/traefik/v3/cmd/traefik",
            binaries.traefik / "traefik",
            f"dev.local/traefik:{binaries.traefik_version}",
        )
    )
    return found


def _image(command: Command) -> cluster_images.Image:
    name = command.binary.name
    stat = command.binary.stat()
    config = ImageConfig(
        entrypoint=(f"/ko-app/{name}",),
        env={"PATH": "/ko-app", "KO_DATA_PATH": KO_DATA_PATH},
        user=NONROOT,
    )
    # build.sh never rebuilds a binary in place, so its size and time identify it.
    key = hashlib.sha256(
        "\0".join(
            (
                cluster_images.RECIPE_VERSION,
                command.ref,
                str(stat.st_size),
                str(stat.st_mtime_ns),
                repr(config),
            )
        ).encode()
    ).hexdigest()

    def build(buildah: Buildah, scratch: Path) -> None:
        (scratch / "rootfs" / "ko-app").mkdir(parents=True)
        target = scratch / "rootfs" / "ko-app" / name
        try:
            os.link(command.binary, target)  # no copy of 80 MB
        except OSError:  # another file system
            shutil.copy2(command.binary, target)
        buildah.commit_rootfs(scratch / "rootfs", command.ref, key, config)

    stem = "knative-" + command.ref.removeprefix("dev.local/").split(":")[0].replace("/", "-")
    return cluster_images.Image(stem, (command.ref,), key, build)


def catalog(binaries: Binaries) -> list[cluster_images.Image]:
    return [_image(command) for command in commands(binaries)]


def ensure_imported(binaries: Binaries) -> dict[str, str]:
    """Build the missing images and import them into the node's containerd; ko:// package → ref."""
    cluster_images.ensure_images(localcluster.containerd_address(), catalog=catalog(binaries))
    return {command.package: command.ref for command in commands(binaries)}
