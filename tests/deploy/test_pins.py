"""The images' pinned dependencies are complete and consistent, whatever is installed here.

The pins are checked with pip's own resolver (a dry run against the package index,
ignoring this environment): resolving a pin file must give back exactly the pinned set,
so `pip install -r` in an image installs those versions and nothing else. Comparing
with the versions installed here would tie the test to how this machine resolved the
test extras (awscli, for one, holds python-dateutil back), not to the images.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import DEPLOY
from tests.deploy.pins import FUNCTION_REQUIREMENTS, normalize, project_requirements, read_pins

REQUIREMENT_FILES = {
    "function": FUNCTION_REQUIREMENTS,
    "reaper": DEPLOY / "reaper" / "requirements.txt",
}


def resolve(requirements: Path, tmp_path: Path) -> dict[str, str]:
    """What pip would install from ``requirements`` into an empty environment."""
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), "-r", str(requirements)],
        check=True,
        timeout=600,
    )  # fmt: skip
    installed = json.loads(report.read_text())["install"]
    return {normalize(item["metadata"]["name"]): item["metadata"]["version"] for item in installed}


def test_the_function_image_pins_every_runtime_dependency() -> None:
    pinned = {normalize(name) for name in read_pins(FUNCTION_REQUIREMENTS)}
    missing = {normalize(requirement.name) for requirement in project_requirements()} - pinned
    assert not missing, f"deploy/function/requirements.txt lacks {sorted(missing)}"


@pytest.mark.parametrize("image", sorted(REQUIREMENT_FILES))
def test_each_image_pins_a_self_contained_consistent_set(image: str, tmp_path: Path) -> None:
    pins = {normalize(name): version for name, version in read_pins(REQUIREMENT_FILES[image]).items()}
    assert resolve(REQUIREMENT_FILES[image], tmp_path) == pins
