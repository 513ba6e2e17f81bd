"""The reaper's configuration: flags over environment over defaults, every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobfn._errors import ConfigurationError
from jobfn.reaper._settings import ReaperSettings, load_settings

BASE = {"JOB_SIGNATURE": "team-a", "JOB_NAMESPACE": "batch"}


def test_defaults_keep_a_succeeded_job_an_hour_and_a_failed_one_a_week() -> None:
    settings = load_settings([], BASE)

    assert settings == ReaperSettings(signature="team-a", namespace="batch")
    assert (settings.succeeded_retention_seconds, settings.failed_retention_seconds) == (3600, 604800)
    assert settings.sink is None
    assert not settings.dry_run


def test_environment_sets_every_option() -> None:
    env = {
        **BASE,
        "JOBFN_REAPER_SUCCEEDED_RETENTION_SECONDS": "60",
        "JOBFN_REAPER_FAILED_RETENTION_SECONDS": "0",
        "JOBFN_REAPER_DRY_RUN": "true",
        "JOBFN_REAPER_MAX_DELETIONS": "100",
        "JOBFN_REAPER_TIME_BUDGET_SECONDS": "45.5",
        "JOBFN_REAPER_PAGE_SIZE": "50",
        "JOBFN_REAPER_WORKERS": "8",
        "K_SINK": "http://broker.default.svc/events",
        "JOBFN_REAPER_SINK_TIMEOUT_SECONDS": "2",
    }

    settings = load_settings([], env)

    assert settings.succeeded_retention_seconds == 60
    assert settings.failed_retention_seconds == 0
    assert settings.dry_run
    assert settings.max_deletions == 100
    assert settings.time_budget_seconds == 45.5
    assert settings.page_size == 50
    assert settings.workers == 8
    assert settings.sink == "http://broker.default.svc/events"
    assert settings.sink_timeout_seconds == 2.0


def test_flags_win_over_environment() -> None:
    env = {**BASE, "JOBFN_REAPER_SUCCEEDED_RETENTION_SECONDS": "60", "JOBFN_REAPER_PAGE_SIZE": "50"}

    settings = load_settings(
        ["--succeeded-retention", "5", "--page-size", "7", "--dry-run", "--max-deletions", "3"], env
    )

    assert (settings.succeeded_retention_seconds, settings.page_size) == (5, 7)
    assert settings.dry_run
    assert settings.max_deletions == 3


def test_zero_means_no_cap_and_no_time_limit() -> None:
    settings = load_settings(["--max-deletions", "0", "--time-budget", "0"], BASE)

    assert settings.max_deletions is None
    assert settings.time_budget_seconds is None


def test_every_bad_value_is_reported_at_once_naming_its_flag_or_variable() -> None:
    env = {
        "JOB_SIGNATURE": "not a label!",
        "JOBFN_REAPER_FAILED_RETENTION_SECONDS": "a week",
        "K_SINK": "ftp://archive",
        "JOBFN_REAPER_DRY_RUN": "maybe",
    }

    with pytest.raises(ConfigurationError) as raised:
        load_settings(["--page-size", "5000", "--succeeded-retention", "-1", "--workers", "0"], env)

    message = raised.value.message
    for culprit in (
        "JOB_SIGNATURE=",
        "JOBFN_REAPER_FAILED_RETENTION_SECONDS='a week'",
        "K_SINK='ftp://archive'",
        "JOBFN_REAPER_DRY_RUN='maybe'",
        "--page-size='5000'",
        "--succeeded-retention='-1'",
        "--workers='0'",
    ):
        assert culprit in message


def test_a_missing_definitions_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="JOB_DEFINITIONS_CONFIG_PATH"):
        load_settings([], {**BASE, "JOB_DEFINITIONS_CONFIG_PATH": str(tmp_path / "absent.yaml")})


def test_unknown_flag_exits_like_any_bad_configuration() -> None:
    with pytest.raises(SystemExit) as exited:
        load_settings(["--retention", "5"], BASE)

    assert exited.value.code == 2
