"""Builds OCI images without a registry or a Docker engine: buildah, mmdebstrap and gcc.

Every image is committed into a buildah store kept under the image cache, then written
out as an OCI archive that containerd imports. Project images are built by `buildah bud`
from their Containerfiles unchanged, on a base made here with mmdebstrap and tagged with
the name the Containerfile's FROM uses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

KEY_LABEL = "io.jobfn.image-key"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY = "http://deb.debian.org/debian-security"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Documentation and translations are dead weight in an image that runs one program.
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
# Tools the builds call, and the Debian package providing each one (a fresh CI machine
# may lack them). libc.a is what `gcc -static` links against.
TOOL_PACKAGES = {
    "buildah": "buildah",
    "mmdebstrap": "mmdebstrap",
    "gcc": "gcc",
    "ctr": "containerd",
    "/usr/lib/x86_64-linux-gnu/libc.a": "libc6-dev",
    "/bin/busybox": "busybox-static",
}


class ImageBuildError(Exception):
    pass


def run(argv: Sequence[str], *, capture: bool = True) -> str:
    result = subprocess.run(list(argv), capture_output=capture, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-2000:] if capture else ""
        raise ImageBuildError(f"{' '.join(argv)} exited {result.returncode}: {detail}")
    return result.stdout if capture else ""


def ensure_tools() -> None:
    """apt-get install whichever build tools are missing."""
    missing = sorted(
        {
            package
            for tool, package in TOOL_PACKAGES.items()
            if not (Path(tool).exists() or shutil.which(tool))
        }
    )
    if missing:
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing])


@dataclass(frozen=True)
class ImageConfig:
    """The runtime settings of an image assembled from a root filesystem."""

    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH})
    user: str = ""


class Buildah:
    """buildah with its store under the cache, overlay-backed when this kernel allows it."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.driver = "overlay"
        for driver in ("overlay", "vfs"):  # vfs copies every layer whole: the last resort
            self.driver = driver
            try:
                self.run("info")
                return
            except ImageBuildError:
                if driver == "vfs":
                    raise

    def store_root(self) -> Path:
        # One store per driver: a store written by one driver cannot be read by the other.
        return self.store / self.driver

    def run(self, *args: str) -> str:
        root = self.store_root()
        flags = [
            "--root",
            str(root / "root"),
            "--runroot",
            str(root / "run"),
            "--storage-driver",
            self.driver,
        ]
        return run(["buildah", *flags, *args])

    def image_key(self, ref: str) -> str | None:
        """The key label of an image in the store, or None when it is not there."""
        try:
            inspected = json.loads(self.run("inspect", "--type", "image", ref))
        except ImageBuildError:
            return None
        labels = inspected.get("OCIv1", {}).get("config", {}).get("Labels") or {}
        return labels.get(KEY_LABEL)

    def commit_rootfs(self, rootfs: Path, ref: str, key: str, config: ImageConfig) -> None:
        """An image whose single layer is rootfs (a directory or a tar file)."""
        container = self.run("from", "--pull=never", "scratch").strip()
        try:
            self.run("add", container, str(rootfs), "/")
            settings = ["--label", f"{KEY_LABEL}={key}"]
            settings += [arg for name, value in config.env.items() for arg in ("--env", f"{name}={value}")]
            if config.cmd:
                settings += ["--cmd", json.dumps(list(config.cmd))]
            if config.entrypoint:
                settings += ["--entrypoint", json.dumps(list(config.entrypoint))]
            if config.user:
                settings += ["--user", config.user]
            self.run("config", *settings, container)
            self.run("commit", "--quiet", "--rm", container, ref)
        except BaseException:
            self.run("rm", container)
            raise

    def build_containerfile(self, containerfile: Path, context: Path, ref: str, key: str) -> None:
        """`buildah bud` exactly as a user runs `docker build -f <file> -t <ref> .`.

        Nothing is pulled; chroot isolation needs no user namespaces or network setup;
        the host's CA bundle is mounted for pip, since outbound TLS is re-signed here.
        """
        args = ["bud", "--pull=never", "--isolation", "chroot", "--layers", "--quiet"]
        if HOST_CA_BUNDLE.exists():
            args += ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
        args += ["--label", f"{KEY_LABEL}={key}", "-f", str(containerfile), "-t", ref, str(context)]
        self.run(*args)

    def push_archive(self, ref: str, archive: Path) -> None:
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        self.run("push", "--quiet", ref, f"oci-archive:{partial}:{ref}")
        partial.rename(archive)

    def load_archive(self, archive: Path, ref: str) -> None:
        image_id = self.run("pull", "--quiet", f"oci-archive:{archive}").split()[-1]
        self.run("tag", image_id, ref)

    def prune(self) -> None:
        """Drop untagged images: the layers of superseded builds.

        One pass removes only leaves (an old build's last layer); their parents become
        leaves in turn, so repeat until a pass removes nothing.
        """
        for _ in range(30):
            if not self.run("rmi", "--prune").strip():
                return


def debian_rootfs(suite: str, packages: Sequence[str], tarball: Path, hooks: Sequence[str] = ()) -> None:
    """A minbase Debian root filesystem with the packages, as a tar file."""
    mirrors = [
        f"deb {DEBIAN_MIRROR} {suite} main",
        f"deb {DEBIAN_MIRROR} {suite}-updates main",
        f"deb {DEBIAN_SECURITY} {suite}-security main",
    ]
    argv = ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(packages)}"]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
    argv += [f"--customize-hook={hook}" for hook in hooks]
    run([*argv, suite, str(tarball), *mirrors])


def pause_binary(source: Path, output: Path, version: str) -> None:
    """The pod sandbox's pause process, built the way kubernetes/build/pause does."""
    run(
        [
            "gcc",
            "-Os",
            "-Wall",
            "-Werror",
            "-static",
            f"-DVERSION=v{version}-jobfn",
            "-o",
            str(output),
            str(source),
        ]
    )
    run(["strip", str(output)])


def busybox_rootfs(root: Path) -> None:
    """Debian's static busybox with a link for every applet, plus a world-writable /tmp."""
    for directory in ("bin", "tmp", "etc", "root"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in run(["/bin/busybox", "--list"]).split():
        link = root / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")


def scratch_dir(parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="build-", dir=parent))
