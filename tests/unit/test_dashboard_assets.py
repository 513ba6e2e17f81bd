"""The dashboard's assets: what is served, with which headers, and what the page may load."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from jobfn import _dashboard as dashboard
from jobfn._errors import NotFound
from jobfn._rest import PUBLIC_ENDPOINTS, ROUTES


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self.labelled: set[str] = set()
        self.controls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self._in_script = True
        if "style" in found:
            self.inline_styles += 1
        if any(name.startswith("on") for name in found):
            self.inline_scripts += 1
        for name in ("src", "href"):
            if tag in ("script", "link") and found.get(name):
                self.sources.append(str(found[name]))
        if tag == "label" and found.get("for"):
            self.labelled.add(str(found["for"]))
        if tag in ("input", "select", "textarea"):
            self.controls.append(str(found.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def page() -> _References:
    references = _References()
    references.feed(dashboard.response("index.html").get_data(as_text=True))
    return references


def test_the_page_loads_only_its_own_script_and_style_relative_to_the_function() -> None:
    references = page()
    assert sorted(references.sources) == ["ui/app.css", "ui/app.js"]
    for source in references.sources:
        assert dashboard.response(source.removeprefix("ui/")).status_code == 200


def test_nothing_inline_so_the_strict_policy_needs_no_exception() -> None:
    references = page()
    assert (references.inline_scripts, references.inline_styles) == (0, 0)
    policy = dashboard.CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe" not in policy and "http" not in policy


def test_every_control_of_the_page_has_a_label() -> None:
    references = page()
    assert references.controls and set(references.controls) <= references.labelled


@pytest.mark.parametrize(("asset", "kind"), [("index.html", "text/html"), ("app.js", "text/javascript"),
                                             ("app.css", "text/css")])  # fmt: skip
def test_each_asset_carries_the_security_headers(asset: str, kind: str) -> None:
    response = dashboard.response(asset)
    assert response.mimetype == kind
    assert response.headers["Content-Security-Policy"] == dashboard.CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("asset", ["../_rest.py", "__init__.py", ".hidden.js", "missing.js", "_ui", ""])
def test_anything_but_an_asset_is_not_found(asset: str) -> None:
    with pytest.raises(NotFound):
        dashboard.response(asset)


def test_the_script_never_parses_values_as_markup() -> None:
    script = dashboard.response("app.js").get_data(as_text=True)
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)
    assert "localStorage" not in script  # the token lives in the tab's sessionStorage only


def test_the_page_and_assets_are_public_and_the_data_is_not() -> None:
    adapter = ROUTES.bind("")
    assert {adapter.match("/ui")[0], adapter.match("/ui/app.js")[0]} <= PUBLIC_ENDPOINTS
    assert adapter.match("/summary")[0] not in PUBLIC_ENDPOINTS
    assert adapter.match("/jobs/x/events")[0] not in PUBLIC_ENDPOINTS
