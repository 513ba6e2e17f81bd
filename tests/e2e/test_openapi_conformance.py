"""Schemathesis against the OpenAPI document: no 5xx, and every answer as documented.

Requests are generated from the document itself (valid and invalid ones), so a route
that answers outside its description — a status, header, content type or body shape
the document does not list — fails here. The document is built in-process (the one
the function serves, as the first test checks) because schemathesis' lazy fixture
loader does not work with this pytest. The example count is kept modest for the
suite's run time; a larger run belongs to a reliability pass.
"""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, settings

from jobfn import _openapi as openapi
from tests.helpers import FunctionServer

MAX_EXAMPLES = 50
# A request the document allows may still be refused on meaning, which a schema cannot
# state: an expired or forged next_token, a definition's own parameter rules, an
# override the definition does not allow. Those answers are 400, as documented.
EXCLUDED_CHECKS = [schemathesis.checks.positive_data_acceptance]

schema = schemathesis.openapi.from_dict(openapi.document())


def test_the_function_serves_the_document_under_test(function_server: FunctionServer) -> None:
    assert requests.get(f"{function_server.url}/openapi.json", timeout=30).json() == openapi.document()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_generated_request_is_answered_as_documented(
    case: schemathesis.Case, function_server: FunctionServer
) -> None:
    case.call_and_validate(base_url=function_server.url, timeout=30, excluded_checks=EXCLUDED_CHECKS)
