"""The Snakemake job image, built on the local cluster's python base and imported into its node.

Nothing can be pulled here, so the image Snakemake's jobs name (``--container-image``) is
built from ``snakemake.Containerfile`` with the cluster's own image tools, cached like the
cluster's images (by a key of its Containerfile and base) and imported under that name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.cluster import localcluster
from tests.cluster.containerfile import inputs_digest
from tests.cluster.imagebuild import Buildah
from tests.cluster.images import (
    PYTHON_BASE,
    RECIPE_VERSION,
    Image,
    build_images,
    containerd_image_keys,
    images,
    import_image,
    qualified,
)

HERE = Path(__file__).resolve().parent
SNAKEMAKE_IMAGE = "jobfn-snakemake:9.27.1"


def snakemake_image() -> Image:
    python = next(image for image in images() if image.name == "python")
    containerfile = HERE / "snakemake.Containerfile"
    ref = qualified(SNAKEMAKE_IMAGE)

    def build(buildah: Buildah, scratch: Path) -> None:
        buildah.build_containerfile(containerfile, HERE, ref, image.key)

    image = Image(
        "snakemake",
        (ref,),
        hashlib.sha256(
            f"{RECIPE_VERSION}\0snakemake\0{inputs_digest(containerfile, HERE, {PYTHON_BASE: python.key})}".encode()
        ).hexdigest(),
        build,
        (python,),
    )
    return image


def ensure_snakemake_image() -> str:
    """The image's name, built (once per machine) and imported into the node if missing."""
    image = snakemake_image()
    address = localcluster.containerd_address()
    if containerd_image_keys(address).get(image.refs[0]) != image.key:
        python = image.bases[0]
        for built in build_images({image.name}, [python, image]):
            if built.image is image:
                import_image(built, address)
    return SNAKEMAKE_IMAGE
