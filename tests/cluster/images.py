"""Every image the local cluster's real node runs, built on this machine and imported.

There is no registry and no Docker engine here: nothing can be pulled. So each image is
built from something that is here (Debian packages via mmdebstrap, pause.c from the
Kubernetes module, the project's Containerfiles via buildah) and imported into the node's
containerd under the exact name a manifest asks for.

Each image is cached per machine as an OCI archive under $JOBFN_CACHE/images/archives,
named by a key: a hash of what goes into that image. Editing function/ rebuilds the
function and reaper images and nothing else; editing a requirements file rebuilds its
image; bumping RECIPE_VERSION rebuilds all. containerd images carry their key as a
label, so a warm ensure_images() only lists images and compares labels.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.cluster import localcluster
from tests.cluster.containerfile import inputs_digest
from tests.cluster.imagebuild import (
    DEFAULT_PATH,
    KEY_LABEL,
    Buildah,
    ImageBuildError,
    ImageConfig,
    busybox_rootfs,
    debian_rootfs,
    ensure_tools,
    pause_binary,
    run,
)

# Bump to rebuild every image (a change to how images are assembled, not what goes in).
RECIPE_VERSION = "1"
REPO = Path(__file__).resolve().parents[2]
KUBERNETES_GO_MOD = Path(__file__).resolve().parent / "build" / "kubernetes" / "go.mod"
# The version kubernetes' own build/pause/Makefile tags for this release.
PAUSE_VERSION = "3.10.2"
PAUSE_IMAGE = f"registry.k8s.io/pause:{PAUSE_VERSION}"  # containerd's sandbox_image
PYTHON_BASE = "python:3.11-slim"  # what the Containerfiles' FROM names; bookworm has 3.11.2
PYTHON_PACKAGES = ("python3", "python3-pip", "python3-venv", "python-is-python3", "passwd", "ca-certificates")
# The official python image installs with pip system-wide; Debian's marker would refuse
# the Containerfiles' `pip install` (PEP 668).
PYTHON_HOOKS = ('rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',)
# Debian trixie ships perl 5.40, the version the pi sample names.
PERL_SUITE, PERL_PACKAGES = "trixie", ("perl",)


class ImagesError(Exception):
    pass


@dataclass(frozen=True)
class Image:
    name: str  # the cache file stem and the CLI's label
    refs: tuple[str, ...]  # fully qualified, as the kubelet asks containerd for them
    key: str
    build: Callable[[Buildah, Path], None]  # commits refs[0] into the store; gets a scratch dir
    bases: tuple[Image, ...] = ()  # images that must be in the store before building


@dataclass(frozen=True)
class BuiltImage:
    image: Image
    archive: Path
    seconds: float | None  # None: the archive was cached

    @property
    def size(self) -> int:
        return self.archive.stat().st_size


def qualified(ref: str) -> str:
    """The name containerd stores for a manifest's image: `busybox:1.36` is docker.io/library/busybox:1.36."""
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if "/" in ref else f"docker.io/library/{ref}"


def image_dir() -> Path:
    return localcluster.cache_dir() / "images"


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join((RECIPE_VERSION, *parts)).encode()).hexdigest()


def _output(*argv: str) -> str:
    """A tool's answer, or "" when it is not installed (yet): keys then say so and differ."""
    if not shutil.which(argv[0]):
        return ""
    return subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout.strip()


def kubernetes_version() -> str:
    found = re.search(r"^require k8s\.io/kubernetes (v\S+)", KUBERNETES_GO_MOD.read_text(), re.MULTILINE)
    if not found:
        raise ImagesError(f"no k8s.io/kubernetes requirement in {KUBERNETES_GO_MOD}")
    return found.group(1)


def pause_source() -> Path:
    """pause.c from the module the control-plane build downloads (tests/cluster/build.sh)."""
    modcache = Path(_output("go", "env", "GOMODCACHE") or Path.home() / "go" / "pkg" / "mod")
    source = (
        modcache / "k8s.io" / f"kubernetes@{kubernetes_version()}" / "build" / "pause" / "linux" / "pause.c"
    )
    if not source.exists():
        raise ImagesError(f"{source} is missing; run tests/cluster/build.sh first")
    return source


def _pause(source: Path) -> Image:
    def build(buildah: Buildah, scratch: Path) -> None:
        (scratch / "rootfs").mkdir()
        pause_binary(source, scratch / "rootfs" / "pause", PAUSE_VERSION)
        config = ImageConfig(entrypoint=("/pause",), env={}, user="65535:65535")
        buildah.commit_rootfs(scratch / "rootfs", PAUSE_IMAGE, image.key, config)

    key = _key(
        "pause",
        PAUSE_VERSION,
        hashlib.sha256(source.read_bytes()).hexdigest(),
        _output("gcc", "-dumpversion"),
    )
    image = Image("pause", (PAUSE_IMAGE,), key, build)
    return image


def _busybox() -> Image:
    refs = (qualified("busybox:1.36"), qualified("busybox:latest"))  # 1.36: deploy/base/definitions.yaml

    def build(buildah: Buildah, scratch: Path) -> None:
        busybox_rootfs(scratch / "rootfs")
        buildah.commit_rootfs(scratch / "rootfs", refs[0], image.key, ImageConfig(cmd=("sh",)))

    image = Image(
        "busybox",
        refs,
        _key("busybox", _output("dpkg-query", "-W", "-f=${Version}", "busybox-static")),
        build,
    )
    return image


def _debian(
    name: str,
    ref: str,
    suite: str,
    packages: tuple[str, ...],
    config: ImageConfig,
    hooks: tuple[str, ...] = (),
) -> Image:
    def build(buildah: Buildah, scratch: Path) -> None:
        debian_rootfs(suite, packages, scratch / "rootfs.tar", hooks)
        buildah.commit_rootfs(scratch / "rootfs.tar", ref, image.key, config)

    image = Image(name, (ref,), _key(name, suite, *packages, *hooks, repr(config)), build)
    return image


def _project(name: str, ref: str, containerfile: Path, base: Image) -> Image:
    def build(buildah: Buildah, scratch: Path) -> None:
        buildah.build_containerfile(containerfile, REPO, ref, image.key)

    key = _key(name, inputs_digest(containerfile, REPO, {PYTHON_BASE: base.key}))
    image = Image(name, (ref,), key, build, (base,))
    return image


def images() -> list[Image]:
    """Every image, bases before the images built on them, keys computed now.

    Missing build tools are installed first: the keys read their versions.
    """
    ensure_tools()
    env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
    python = _debian(
        "python",
        qualified(PYTHON_BASE),
        "bookworm",
        PYTHON_PACKAGES,
        ImageConfig(cmd=("python3",), env=env),
        PYTHON_HOOKS,
    )
    perl = _debian(
        "perl",
        qualified("perl:5.40-slim"),
        PERL_SUITE,
        PERL_PACKAGES,
        ImageConfig(cmd=("perl", "-v"), env=env),
    )
    return [
        _pause(pause_source()),
        _busybox(),
        perl,
        python,
        _project(
            "function",
            qualified("jobfn-function:0.1.0"),
            REPO / "deploy" / "function" / "Containerfile",
            python,
        ),
        _project(
            "reaper", qualified("jobfn-reaper:0.1.0"), REPO / "deploy" / "reaper" / "Containerfile", python
        ),
    ]


def archive_path(image: Image) -> Path:
    return image_dir() / "archives" / f"{image.name}-{image.key[:20]}.tar"


@contextmanager
def _build_lock() -> Iterator[None]:
    """One builder per machine: two would race on the archives and the buildah store."""
    image_dir().mkdir(parents=True, exist_ok=True)
    with open(image_dir() / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _prune_archives(image: Image) -> None:
    keep = archive_path(image)
    for old in keep.parent.glob(f"{image.name}-*"):
        if old != keep:
            old.unlink()


def build_images(only: set[str] | None = None, catalog: list[Image] | None = None) -> list[BuiltImage]:
    """Build every image (or those named, and their bases) whose archive is not cached."""
    catalog = catalog if catalog is not None else images()
    wanted = {image.name for image in catalog} if only is None else set(only)
    wanted |= {base.name for image in catalog if image.name in wanted for base in image.bases}
    with _build_lock():
        buildah: Buildah | None = None
        results = []
        for image in (image for image in catalog if image.name in wanted):
            archive = archive_path(image)
            if archive.exists():
                results.append(BuiltImage(image, archive, None))
                continue
            started = time.monotonic()
            buildah = buildah or Buildah(image_dir() / "buildah")
            for base in image.bases:
                if buildah.image_key(base.refs[0]) != base.key:  # e.g. the store was wiped
                    buildah.load_archive(archive_path(base), base.refs[0])
            scratch = image_dir() / "scratch" / image.name
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            try:
                image.build(buildah, scratch)
                archive.parent.mkdir(parents=True, exist_ok=True)
                buildah.push_archive(image.refs[0], archive)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            _prune_archives(image)
            if not image.bases and not any(image in other.bases for other in catalog):
                # A one-layer image nothing builds on: its archive is all that is needed.
                buildah.run("rmi", image.refs[0])
            results.append(BuiltImage(image, archive, time.monotonic() - started))
        if buildah is not None:
            buildah.prune()
        return results


def _ctr(address: Path, namespace: str, *args: str) -> str:
    return run(["ctr", "--address", str(address), "--namespace", namespace, *args])


def containerd_image_keys(address: Path, namespace: str = "k8s.io") -> dict[str, str]:
    """ref -> our key label, for every image in the namespace (empty string: no label)."""
    keys = {}
    for line in _ctr(address, namespace, "images", "ls").splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        labels = dict(label.partition("=")[::2] for label in fields[-1].split(",") if "=" in label)
        keys[fields[0]] = labels.get(KEY_LABEL, "")
    return keys


def import_image(built: BuiltImage, address: Path, namespace: str = "k8s.io") -> None:
    first, *others = built.image.refs
    _ctr(address, namespace, "images", "import", str(built.archive))
    if others:
        _ctr(address, namespace, "images", "tag", "--force", first, *others)
    for ref in built.image.refs:
        _ctr(address, namespace, "images", "label", ref, f"{KEY_LABEL}={built.image.key}")


def ensure_images(
    containerd_address: Path, namespace: str = "k8s.io", catalog: list[Image] | None = None
) -> None:
    """Build whatever is missing and import every image the node runs (or those of
    ``catalog``, e.g. tests/knative's) into that containerd."""
    catalog = catalog if catalog is not None else images()
    present = containerd_image_keys(containerd_address, namespace)
    stale = {image.name for image in catalog if any(present.get(ref) != image.key for ref in image.refs)}
    if not stale:
        return
    for built in build_images(stale, catalog):
        if built.image.name in stale:
            import_image(built, containerd_address, namespace)


__all__ = [
    "PAUSE_IMAGE",
    "BuiltImage",
    "Image",
    "ImageBuildError",
    "ImagesError",
    "build_images",
    "ensure_images",
    "images",
]
