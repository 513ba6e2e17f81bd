"""Cold start from zero, as users feel it: a request to a revision at zero → its answer, for the
function (a submission → 201) beside a functions-framework hello-world Knative Service made
from the same template. The test checks that every start from zero answers (a 201 with its job,
the hello-world's 200), twice per pair, and prints what it saw; figures worth reading need more
starts and a quiet machine, and belong to the benchmark (`python -m bench --only
knative-coldstart` runs the same machinery, tests/knative/coldstart.py, over 10 starts).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.helpers import Kubectl
from tests.knative import install
from tests.knative.coldstart import KINDS, Pair, cold_start_pairs, run_starts
from tests.knative.jobfn import ProjectImages

STARTS = 4  # each pair starts from zero twice: its second start follows a real scale-down
# Namespaces taking turns: while one pair starts, the other scales down (about 12 s from an
# answer to zero here), so the starts follow each other closely, still one at a time.
PAIRS = 2


@pytest.fixture(scope="module")
def pairs(
    knative: install.Installed,
    jobfn_images: ProjectImages,
    api_client: client.ApiClient,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[Pair]]:
    """PAIRS namespaces, each with deploy/'s function (no Eventing) and the hello-world, Ready."""
    with cold_start_pairs(
        api_client, kubectl, jobfn_images, tmp_path_factory.mktemp("cold-start"), PAIRS
    ) as found:
        yield found


@pytest.mark.timeout(1800)
def test_cold_start_from_zero_of_the_function_beside_a_hello_world(pairs: list[Pair]) -> None:
    starts = run_starts(pairs, STARTS)

    lines = [
        f"\ncold start from zero over {STARTS} starts (request → answer, through Traefik and the activator):",
        *(f"  {starts.summary(kind)}" for kind in KINDS),
        f"  waited for zero before each start: median {statistics.median(starts.waited):.1f} s "
        f"({PAIRS} pairs in turn)",
    ]
    print("\n".join(lines))
