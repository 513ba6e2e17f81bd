"""The functions-framework target: ``functions-framework --target handle --source function/main.py``.

functions-framework loads this file as a top-level module named ``main`` (not as
``jobfn.main``), so the imports below are absolute: they need ``jobfn`` installed
(``pip install .``, as the images and ``make install`` do).
Importing it does only cheap work — settings, logging, the route table; the Kubernetes
client is loaded by the first request that needs it, which keeps cold starts short.
"""

from __future__ import annotations

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from jobfn._logs import configure_logging
from jobfn._routing import dispatch
from jobfn._service import Service
from jobfn._settings import load_settings
from jobfn._web import REQUEST_ID_HEADER, begin_request, error_response

SETTINGS = load_settings()  # a wrong variable stops the start here, naming the variable
configure_logging(SETTINGS.log_level)
SERVICE = Service(SETTINGS)


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    """Every request: CloudEvents, the REST API and the AWS Batch API."""
    return dispatch(request, SERVICE)


def _json_error(error: Exception) -> flask.Response:
    request_id = begin_request(flask.request.headers.get(REQUEST_ID_HEADER))
    response = error_response(error)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


# Answers Flask gives on its own (functions-framework's 404 for /robots.txt and
# /favicon.ico, a crash outside ``handle``) take the same JSON shape as every other error.
functions_framework.errorhandler(HTTPException)(_json_error)
functions_framework.errorhandler(Exception)(_json_error)
