"""The dashboard in a real browser: Debian's Chromium driven by Selenium and chromedriver.

The function serves tests/data/definitions/dashboard.yaml: ``greet`` runs on the real
node (so its page shows a real log), ``simulated`` on KWOK in whatever state a test asks.
Screenshots go to ``$JOBFN_SCREENSHOT_DIR`` when it is set (the README's come from there).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait

from jobfn._retention import HOLD_FOREVER
from tests.e2e.test_auth import service_account_token
from tests.helpers import ROOT, FunctionServer, install_missing_debian_packages, start_function, wait_for

DEFINITIONS = ROOT / "tests" / "data" / "definitions" / "dashboard.yaml"
GREETING = "hello from the browser test"
WAIT = 60.0  # the real node's first pod of a run may wait for its image to unpack


def serve(namespace: str, directory: Path, **env: str) -> FunctionServer:
    return start_function(namespace, DEFINITIONS, directory / "function.log", env)


@pytest.fixture(scope="module")
def server(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    function = serve(module_namespace, tmp_path_factory.mktemp("dashboard"))
    yield function
    function.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    install_missing_debian_packages({"chromium": "chromium", "chromedriver": "chromium-driver"})
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1100"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # chromedriver from Debian, named outright: Selenium Manager's download cannot work here.
    service = ChromeService(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def no_script_errors(browser: WebDriver) -> Iterator[None]:
    """A script error or a Content-Security-Policy violation fails the test that caused it."""
    browser.get_log("browser")  # drop what earlier tests left
    yield
    broken = [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Uncaught" in entry["message"] or "Content Security Policy" in entry["message"]
    ]
    assert not broken


def submit(server: FunctionServer, definition: str, queue: str | None = None, **arguments: Any) -> str:
    body: dict[str, Any] = {"definition": definition, "arguments": arguments}
    if queue:
        body["queue"] = queue
    response = requests.post(f"{server.url}/jobs", json=body, timeout=10)
    assert response.status_code == 201, response.text
    name: str = response.json()["name"]
    return name


def job(server: FunctionServer, name: str) -> dict[str, Any]:
    response = requests.get(f"{server.url}/jobs/{name}", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def in_state(server: FunctionServer, name: str, state: str) -> dict[str, Any]:
    return wait_for(
        lambda: (found := job(server, name))["state"] == state and found, timeout=WAIT, what=f"{name} {state}"
    )


@pytest.fixture(scope="module")
def jobs(server: FunctionServer) -> dict[str, str]:
    """Jobs in four states over two definitions and two queues."""
    made = {
        "succeeded-1": submit(server, "simulated", "main"),
        "succeeded-2": submit(server, "simulated", "main"),
        "failed": submit(server, "simulated", "batch", exit_code=3),
        "running": submit(server, "simulated", "batch", run_ms="forever"),
        "greet": submit(server, "greet", message=GREETING, repeat=2),
    }
    for key, state in [("succeeded-1", "SUCCEEDED"), ("succeeded-2", "SUCCEEDED"), ("failed", "FAILED"),
                       ("running", "RUNNING"), ("greet", "SUCCEEDED")]:  # fmt: skip
        in_state(server, made[key], state)
    return made


def until(browser: WebDriver, check: Callable[[WebDriver], Any], what: str) -> Any:
    """Wait for ``check`` while the page re-renders under it (it refreshes by itself)."""

    def attempt(driver: WebDriver) -> Any:
        try:
            return check(driver)
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    return WebDriverWait(browser, WAIT, poll_frequency=0.2).until(attempt, what)


def text_of(browser: WebDriver, selector: str) -> str:
    text: str = browser.find_element(By.CSS_SELECTOR, selector).text
    return text


def listed_jobs(browser: WebDriver) -> list[str]:
    return [
        row.get_attribute("data-job") or ""
        for row in browser.find_elements(By.CSS_SELECTOR, "#jobs tr[data-job]")
    ]


def screenshot(browser: WebDriver, name: str, tmp_path: Path) -> None:
    directory = Path(os.environ.get("JOBFN_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(directory / f"dashboard-{name}.png"))


def test_overview_counts_jobs_by_state_per_definition_and_per_queue(
    server: FunctionServer, jobs: dict[str, str], browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(f"{server.url}/ui")

    cell = "#by-definition td[data-group='{}'][data-state='{}']"
    until(
        browser, lambda b: text_of(b, cell.format("simulated", "SUCCEEDED")) == "2", "2 simulated SUCCEEDED"
    )
    assert text_of(browser, cell.format("simulated", "FAILED")) == "1"
    assert text_of(browser, cell.format("simulated", "RUNNING")) == "1"
    assert text_of(browser, cell.format("greet", "SUCCEEDED")) == "1"
    assert text_of(browser, cell.format("simulated", "total")) == "4"
    queue_cell = "#by-queue td[data-group='{}'][data-state='{}']"
    assert text_of(browser, queue_cell.format("batch", "FAILED")) == "1"
    assert text_of(browser, queue_cell.format("batch", "RUNNING")) == "1"
    assert text_of(browser, queue_cell.format("main", "SUCCEEDED")) == "2"
    listed = requests.get(f"{server.url}/jobs", timeout=10).json()["jobs"]
    until(browser, lambda b: listed_jobs(b) == [j["name"] for j in listed], "the jobs in the API's order")
    assert set(listed_jobs(browser)) == set(jobs.values())
    screenshot(browser, "overview", tmp_path)


def test_filters_narrow_the_table_and_a_count_links_to_its_jobs(
    server: FunctionServer, jobs: dict[str, str], browser: WebDriver
) -> None:
    browser.get(f"{server.url}/ui")
    state = until(browser, lambda b: b.find_element(By.ID, "filter-state"), "the filter form")
    Select(state).select_by_visible_text("FAILED")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    until(browser, lambda b: listed_jobs(b) == [jobs["failed"]], "only the failed job")

    clear_filters(browser)
    prefix = until(browser, lambda b: b.find_element(By.ID, "filter-name_prefix"), "a cleared form")
    prefix.send_keys("greet-", Keys.ENTER)
    until(browser, lambda b: listed_jobs(b) == [jobs["greet"]], "only the greet job")

    clear_filters(browser)
    link = until(browser, lambda b: b.find_element(By.CSS_SELECTOR, "#by-queue td[data-group=batch][data-state=RUNNING] a"),
                 "the running count's link")  # fmt: skip
    link.click()
    until(browser, lambda b: listed_jobs(b) == [jobs["running"]], "only batch's running job")


def clear_filters(browser: WebDriver) -> None:
    """Press Clear and wait until the page it leaves is gone.

    The overview is drawn anew on every navigation, so an element found before the old
    form is detached would go stale under the next keystroke or click.
    """
    form = browser.find_element(By.CSS_SELECTOR, "form.filters")
    form.find_element(By.CSS_SELECTOR, "button[type=button]").click()
    WebDriverWait(browser, WAIT).until(staleness_of(form), "the filtered page replaced")


def test_a_job_page_shows_its_real_log_attempts_and_events(
    server: FunctionServer, jobs: dict[str, str], browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(f"{server.url}/ui#/?name_prefix=greet-")
    until(browser, lambda b: b.find_element(By.LINK_TEXT, jobs["greet"]), "the greet job's link").click()

    until(browser, lambda b: GREETING in text_of(b, "#logs"), "the real log")
    assert text_of(browser, "#logs").splitlines() == [f"{GREETING} (plain)"] * 2
    assert text_of(browser, "#job-state") == "SUCCEEDED"
    assert text_of(browser, "#attempts td.exit-code") == "0"
    assert "repeat" in text_of(browser, "table.pairs")  # the arguments
    until(browser, lambda b: "Completed" in text_of(b, "#events"), "the Job controller's events")
    assert text_of(browser, "#deletion-time").startswith("not set yet")  # the reaper sets it
    screenshot(browser, "job", tmp_path)


def test_the_form_shows_a_refused_value_at_its_field_and_a_valid_one_opens_the_new_job(
    server: FunctionServer, jobs: dict[str, str], browser: WebDriver
) -> None:
    browser.get(f"{server.url}/ui#/definitions")
    form = until(
        browser, lambda b: b.find_element(By.CSS_SELECTOR, "form[data-definition=greet]"), "greet's form"
    )
    repeat = form.find_element(By.ID, "param-greet-repeat")
    assert repeat.get_attribute("value") == "1"  # the default
    style = Select(form.find_element(By.ID, "param-greet-style"))
    assert [option.text for option in style.options] == ["plain", "excited"]
    assert style.first_selected_option.text == "plain"  # the default
    repeat.clear()
    repeat.send_keys("9")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    problem = until(browser, lambda b: text_of(b, "#param-greet-repeat-problem"), "the problem at repeat")
    assert "9 is greater than the maximum of 3" in problem
    assert repeat.get_attribute("aria-invalid") == "true"
    assert text_of(browser, "#param-greet-message-problem") == ""

    repeat.clear()
    repeat.send_keys("3")
    style.select_by_visible_text("excited")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    until(browser, lambda b: b.current_url.split("#")[1].startswith("/jobs/greet-"), "the new job's page")
    name = browser.current_url.split("#/jobs/")[1]
    assert text_of(browser, "h1") == name
    assert job(server, name)["arguments"] == {"message": "hello", "repeat": 3, "style": "excited"}
    until(browser, lambda b: text_of(b, "#logs").count("hello (excited)") == 3, "the new job's log")


def test_terminate_and_hold_from_the_job_page(
    server: FunctionServer, jobs: dict[str, str], browser: WebDriver
) -> None:
    browser.get(f"{server.url}/ui#/jobs/{jobs['running']}")
    reason = until(browser, lambda b: b.find_element(By.ID, "terminate-reason"), "the terminate form")
    reason.clear()
    reason.send_keys("stopped from the browser test")
    browser.find_element(By.ID, "terminate").click()

    until(browser, lambda b: text_of(b, "#job-state") == "FAILED", "the job FAILED")
    assert "stopped from the browser test" in text_of(browser, "#job-reason")
    assert "stopped from the browser test" in job(server, jobs["running"])["reason"]
    assert not browser.find_elements(By.ID, "terminate")  # a finished job cannot be terminated

    browser.find_element(By.ID, "hold").click()
    until(browser, lambda b: "held" in text_of(b, "#deletion-time"), "the hold shown")
    assert job(server, jobs["running"])["deletion_time"] == HOLD_FOREVER


def test_with_token_review_a_person_signs_in_with_a_token_that_never_enters_the_page(
    kubeconfig: Path,
    api_client: client.ApiClient,
    module_namespace: str,
    browser: WebDriver,
    jobs: dict[str, str],
    tmp_path: Path,
) -> None:
    token = service_account_token(client.CoreV1Api(api_client), module_namespace, "dashboard-reader")
    secured = serve(module_namespace, tmp_path, JOBFN_AUTH="tokenreview")
    try:
        browser.get(f"{secured.url}/ui")
        field = until(browser, lambda b: b.find_element(By.ID, "token").is_displayed() and b.find_element(By.ID, "token"),
                      "the sign-in form")  # fmt: skip
        until(browser, lambda b: "token" in text_of(b, "main").lower(), "the 401 explained")
        field.send_keys(token, Keys.ENTER)

        until(browser, lambda b: jobs["greet"] in listed_jobs(b), "the jobs, once signed in")
        assert not browser.find_element(By.ID, "sign-in").is_displayed()
        assert token not in browser.page_source
        assert browser.execute_script("return sessionStorage.getItem('jobfn-token')") == token
        assert browser.execute_script("return localStorage.length") == 0

        browser.find_element(By.ID, "sign-out").click()
        assert browser.execute_script("return sessionStorage.getItem('jobfn-token')") is None
    finally:
        secured.stop()
