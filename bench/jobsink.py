"""Measurement: Knative Eventing's JobSink beside jobfn's CloudEvents door, on the same events.

JobSink (``knative.dev/eventing/cmd/jobsink``, built and installed by tests/knative, run as
Eventing's manifests run it: one pod in knative-eventing) is the Go peer that does jobfn's
job: a CloudEvent in, a Job out. Both get the same binary-mode events from the same load
generator, with a bearer token each (Eventing's OIDC is on: JobSink checks its audience;
jobfn runs as deploy/ runs it with brokers, ``JOBFN_AUTH=tokenreview`` and an event
audience, so both authenticate every event). Both make a Job of the same pod spec (the
JobSink object's, tests/knative/jobsink.py) on a KWOK node, in one namespace, cleaned
before each concurrency's bursts.

Both servers and both load generators run in the cluster's network namespace, as in-cluster
callers and servers do: JobSink is reached at its Service's ClusterIP, jobfn on loopback,
and jobfn reaches the API server there directly (not through the host's relay).

A third contender is the same JobSink with its API client's rate limits raised
(bench/jobsink_servers.py says why): as shipped, client-go's defaults cap it near 2.5
events/s, which says nothing of its code. The goal is judged against JobSink as shipped;
the same ratio against the raised one is printed beside it.

Per event, JobSink lists the JobSink's jobs by a label (its duplicate check), creates the
Job and creates a Secret holding the event; jobfn creates the Job (its duplicate check is
the Job's name). CPU: jobfn's process tree from /proc, as the submission part reads it;
JobSink's container from its cgroup (``cpuacct.usage``), both around each burst.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import yaml

from .harness import READY_PROBE, Bench
from .jobsink_servers import EVENTING_NAMESPACE, JOBSINK_SELECTOR, running_container, start_raised_limits
from .knative_cluster import knative_kubectl
from .processes import LoadGenerator, Server, free_port, function_argv, start_server, wait_until_ok
from .procfs import TreeSample, sample_cgroup, sample_tree
from .submission import SubmissionFigure, Tally, describe, measure_round, warm_up
from .workload import EVENT_TYPE

CONTENDERS = ("jobfn-cloudevent", "jobsink", "jobsink-limits-raised")
LABELS = {
    "jobfn-cloudevent": "jobfn CloudEvents",
    "jobsink": "Knative JobSink",
    "jobsink-limits-raised": "JobSink, limits raised",
}
PEER_DEFINITION = "jobsink-peer"
JOBFN_AUDIENCE = "jobfn"  # what deploy/components/broker-oidc sets
WARMUP_PER_THREAD = 1
# Bursts of the plan's length (2 s in the full run), two per contender and concurrency, not the
# plan's three: JobSink as shipped needs ~11 s to answer 32 events in flight, so each of its
# bursts at c=32 lasts ~13 s whatever the plan asks; the part stays near 2.5 minutes.
ROUNDS = 2
TOKEN_SECONDS = 3 * 3600


@dataclass
class JobSinkRun:
    """The part's figures, and what the reader needs to weigh them."""

    figures: list[SubmissionFigure] = field(default_factory=list)
    idle_cpu_ms_per_second: dict[str, float] = field(default_factory=dict)
    """Each server's CPU at rest, over one burst's length before the bursts."""
    jobsink_image: str = ""
    api_limits: dict[str, str] = field(default_factory=dict)
    """Each JobSink container's client-go rate limits, as its Deployment sets them."""


def peer_definitions(job_sink: dict[str, Any]) -> str:
    """jobfn's definitions: one, for the benchmark's event type, making the JobSink's Job
    (its pod spec and annotations; the container echoes the event's message instead of
    reading the Secret JobSink mounts)."""
    job_spec = job_sink["spec"]["job"]["spec"]
    [container] = job_spec["template"]["spec"]["containers"]
    container["command"] = ["echo", "{{ message }}"]
    template = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": PEER_DEFINITION}}
    template["spec"] = job_spec
    definition = {
        "name": PEER_DEFINITION,
        "description": "The job Knative's JobSink makes in the benchmark, on a KWOK node.",
        "parameters": {"message": {"type": "string", "maxLength": 1000}},
        "event_types": [EVENT_TYPE],
        "template": yaml.safe_dump(template, sort_keys=False),
    }
    return yaml.safe_dump({"definitions": [definition]}, sort_keys=False)


def _start(bench: Bench, stack: ExitStack) -> tuple[Any, Server, str, Any]:
    """JobSink (installed, with a JobSink object) and jobfn in the cluster's network namespace,
    both stopped by ``stack``; the JobSink's address, jobfn's server, a token for jobfn, kubectl."""
    from tests.deploy.conftest import service_account_token
    from tests.knative.jobsink import CALLER, jobsink_in_cluster, manifest
    from tests.knative.services import in_cluster

    kubectl = knative_kubectl(bench, "jobsink")
    sink = stack.enter_context(jobsink_in_cluster(bench.cluster.api, kubectl))
    definitions = bench.work_dir / "jobsink-peer-definitions.yaml"
    definitions.write_text(peer_definitions(manifest(sink.namespace)))
    token = service_account_token(
        bench.cluster.api, sink.namespace, CALLER, audience=JOBFN_AUDIENCE, seconds=TOKEN_SECONDS
    )
    port = free_port()
    env = {
        **bench.function_env(sink.namespace),
        "JOB_DEFINITIONS_CONFIG_PATH": str(definitions),
        "JOBFN_AUTH": "tokenreview",
        "JOBFN_EVENT_AUDIENCE": JOBFN_AUDIENCE,
    }
    enter = netns_prefix()
    server = start_server("function-jobsink-part", [*enter, *function_argv(port)], port, env, bench.log_dir)
    stack.callback(server.stop)
    in_cluster(lambda: wait_until_ok(server, READY_PROBE, timeout=60, interval=0.02))
    return sink, server, token, kubectl


def netns_prefix() -> list[str]:
    from tests.cluster import localcluster, netns

    return netns.enter_argv(localcluster.netns_name())


def _idle(samplers: Mapping[str, Callable[[], TreeSample]], seconds: float) -> dict[str, float]:
    before = {name: sample() for name, sample in samplers.items()}
    time.sleep(seconds)
    after = {name: sample() for name, sample in samplers.items()}
    return {name: (after[name].cpu_seconds - before[name].cpu_seconds) * 1000 / seconds for name in samplers}


def measure_jobsink(bench: Bench) -> JobSinkRun:
    """Every contender at every concurrency of the plan, round-robin."""
    run = JobSinkRun()
    with ExitStack() as stack:
        sink, server, token, kubectl = _start(bench, stack)
        shipped = running_container(kubectl, EVENTING_NAMESPACE, JOBSINK_SELECTOR)
        raised = start_raised_limits(kubectl, sink.namespace, stack)
        run.jobsink_image = shipped.image
        run.api_limits = {"jobsink": shipped.api_limits, "jobsink-limits-raised": raised.api_limits}
        samplers = {
            "jobfn-cloudevent": functools.partial(sample_tree, server.pid),
            "jobsink": functools.partial(sample_cgroup, shipped.cgroup),
            "jobsink-limits-raised": functools.partial(sample_cgroup, raised.cgroup),
        }
        path = sink.post_url.split("://", 1)[1].split("/", 1)[1]  # /<namespace>/<name>, served by both
        targets = {
            "jobfn-cloudevent": (f"{server.base_url}/", token),
            "jobsink": (sink.post_url, sink.token),
            "jobsink-limits-raised": (f"http://{raised.pod_ip}:8080/{path}", sink.token),
        }
        loads = {
            name: stack.enter_context(
                LoadGenerator(
                    "cloudevent",
                    {"url": url, "event-type": EVENT_TYPE, "token": secret},
                    bench.log_dir,
                    prefix=netns_prefix(),
                    name=f"jobsink-part-{name}",
                )
            )
            for name, (url, secret) in targets.items()
        }

        def clean() -> None:
            bench.cluster.delete_jobs(sink.namespace, "")  # their pods and JobSink's Secrets go with them

        burst_seconds = bench.plan.phase_seconds / bench.plan.rounds
        run.idle_cpu_ms_per_second = _idle(samplers, burst_seconds)
        for index, concurrency in enumerate(bench.plan.concurrencies):
            if index == 0:
                # The servers' first requests (jobfn imports its handlers on its first one) are
                # not counted; a later concurrency's new connections, a local TCP handshake each,
                # are. Warming up every concurrency cost ~15 s: JobSink as shipped takes 12 s for
                # one event from each of 32 threads.
                for name in CONTENDERS:
                    warm_up(loads[name], concurrency, WARMUP_PER_THREAD)
            clean()
            tallies = {name: Tally() for name in CONTENDERS}
            # Not cleaned between bursts (deleting a few hundred jobs and their pods took 5-10 s
            # each time here): at most ~1,000 jobs gather. JobSink's duplicate check lists by a
            # label, which the API server answers by walking the namespace (~2 us a job: ~2 ms).
            for _ in range(ROUNDS):
                for name in CONTENDERS:
                    measure_round(bench, loads[name], samplers[name], concurrency, tallies[name])
            for name in CONTENDERS:
                figure = tallies[name].figure(name, concurrency)
                bench.say(f"jobsink {describe(LABELS[name], figure)}")
                run.figures.append(figure)
    return run
