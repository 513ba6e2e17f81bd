"""The images install exactly the dependency versions the test suite ran with."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement

from tests.deploy.manifests import DEPLOY
from tests.deploy.pins import FUNCTION_REQUIREMENTS, closure, project_requirements, read_pins, render

REQUIREMENT_FILES = {
    "function": FUNCTION_REQUIREMENTS,
    "reaper": DEPLOY / "reaper" / "requirements.txt",
}


def test_the_function_image_pins_the_closure_of_the_runtime_dependencies() -> None:
    expected = closure(project_requirements())

    assert read_pins(FUNCTION_REQUIREMENTS) == expected, (
        "deploy/function/requirements.txt is stale: python -m tests.deploy.pins > deploy/function/requirements.txt"
    )
    assert FUNCTION_REQUIREMENTS.read_text() == render(expected)


@pytest.mark.parametrize("image", sorted(REQUIREMENT_FILES))
def test_each_image_pins_a_self_contained_set_at_the_tested_versions(image: str) -> None:
    pins = read_pins(REQUIREMENT_FILES[image])

    # The closure of the pinned names is the pinned set, at the versions installed here:
    # `pip install --no-deps` of the file gives a complete, tested environment.
    assert closure(Requirement(name) for name in pins) == pins
