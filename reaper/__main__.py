"""``python -m reaper`` / ``jobfn-reaper``: one reaper run, as a CronJob runs it.

stdout carries only JSON lines meant for machines (archive records when there is no
``K_SINK``, then the run's summary); logs are JSON lines on stderr.
Exit codes: 0 all went well, 1 something failed (see the summary), 2 bad configuration.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from jobfn._contract import DEFINITIONS_PATH_ENV
from jobfn._errors import ConfigurationError, JobfnError
from jobfn._logs import JsonFormatter

from ._settings import ReaperSettings, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIGURATION = 2


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # The client's own debug logging would drown the reaper's lines.
    logging.getLogger("kubernetes").setLevel(max(logging.INFO, logging.getLevelName(level)))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except ConfigurationError as error:
        print(f"jobfn-reaper: configuration error: {error.message}", file=sys.stderr)
        return EXIT_BAD_CONFIGURATION
    configure_logging(settings.log_level)
    try:
        summary = run(settings)
    except ConfigurationError as error:
        print(f"jobfn-reaper: configuration error: {error.message}", file=sys.stderr)
        return EXIT_BAD_CONFIGURATION
    print(json.dumps(summary), flush=True)
    return EXIT_OK if summary["errors"] == 0 else EXIT_FAILED


def run(settings: ReaperSettings) -> dict[str, Any]:
    """One run with ``settings``; the summary. Raises ConfigurationError before any write."""
    # Imported here: the Kubernetes client is slow to import and not needed to report bad flags.
    from jobfn._config_maps import ConfigMapReader
    from jobfn._contract import JobSigner
    from jobfn._definitions import JobDefinitions
    from jobfn._definitions_file import DefinitionsFile
    from jobfn._kube import KubeApi
    from jobfn._manager import JobManager

    from ._archive import ArchiveSink, HttpSink, StdoutSink
    from ._reaping import Reaper, retention_policy

    api = KubeApi.from_environment(settings.workers + 1, settings.api_timeout_seconds)
    manager = JobManager(
        settings.namespace,
        JobSigner(settings.signature),
        JobDefinitions(),  # the reaper never submits; definitions only give retention
        api,
    )
    definitions = JobDefinitions()
    if settings.definitions_path is not None:
        try:
            definitions = DefinitionsFile(
                settings.definitions_path, read_config_map=ConfigMapReader(api, settings.namespace)
            ).current()
        except JobfnError as error:
            raise ConfigurationError(
                f"{DEFINITIONS_PATH_ENV}={str(settings.definitions_path)!r}: {error.message}"
            ) from None
    sink: ArchiveSink = (
        HttpSink(settings.sink, settings.sink_timeout_seconds, settings.workers)
        if settings.sink
        else StdoutSink(sys.stdout)
    )
    reaper = Reaper(
        manager,
        retention_policy(
            settings.succeeded_retention_seconds, settings.failed_retention_seconds, definitions
        ),
        sink,
        dry_run=settings.dry_run,
        max_deletions=settings.max_deletions,
        time_budget_seconds=settings.time_budget_seconds,
        page_size=settings.page_size,
        workers=settings.workers,
        state_events=settings.state_events and settings.sink is not None,
    )
    if settings.state_events and settings.sink is None:
        # Reaping must not stop for want of a sink (a SinkBinding not ready yet): say so, reap on.
        logging.getLogger("reaper").warning(
            "state events are on but K_SINK is not set: none are sent this run (a SinkBinding sets K_SINK)"
        )
    logging.getLogger("reaper").info(
        "reaper run starting",
        extra={"namespace": settings.namespace, "signature": settings.signature, "dry_run": settings.dry_run},
    )
    try:
        return reaper.run().to_json()
    finally:
        api.close()


if __name__ == "__main__":
    sys.exit(main())
