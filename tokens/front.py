"""The token service's three endpoints, answered ahead of Django's request handler.

A thin WSGI adapter, here because Django's handler could not be told to skip, for three
routes that use no session, user, URLconf or cache, the per-request work it does around
every view: the request_started / request_finished receivers (`reset_queries`,
`close_old_connections` twice, `close_caches`, `reset_urlconf`), each reaching its
connections through asgiref's `Local`, plus the handler's own bookkeeping. Measured in
process (bench/token_instructions.py under callgrind, ES256): 1.11M instructions per token
request through `WSGIHandler`, 0.87M here plus ~0.03M for the connection housekeeping
below, a fifth of the request.

What a token request still gets is Django's: the same `WSGIRequest`, Django's
`SecurityMiddleware` (HTTPS redirect, HSTS and the other security headers) and the
`TokenServiceShortcut` the Django path runs (Host check, protocol-format errors, framing),
each wrapped as Django's handler wraps middleware, so an exception becomes Django's error
response. After each request it does what Django's `request_finished` receiver would for
the database: `close_old_connections()` closes a connection that failed or outlived
CONN_MAX_AGE and makes the next use run CONN_HEALTH_CHECKS. The receivers left out do
nothing a token request needs: query logs only grow under DEBUG, the cache backends keep
pooled connections, and these views never set a URLconf.

Everything else (the console, the well-known documents, /healthz) goes to Django's own
handler. Tests drive the token endpoints through this adapter (tests/tokens/conftest.py)
and through `bin/serve` (tests/tokens/test_server.py).
"""

from __future__ import annotations

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections
from django.middleware.security import SecurityMiddleware

from .middleware import ROUTES, TokenServiceShortcut


def _not_a_token_route(request):
    raise AssertionError(f"{request.path_info} is not a token-service route")


def token_service_front(django_application, housekeeping=close_old_connections):
    """A WSGI application serving the token routes itself and the rest through Django's.

    `housekeeping` runs after each token request; tests pass a no-op, as Django's test
    client disconnects `close_old_connections`, which would end the test's transaction.
    """
    token_service = convert_exception_to_response(
        SecurityMiddleware(convert_exception_to_response(TokenServiceShortcut(_not_a_token_route)))
    )

    def application(environ, start_response):
        if environ.get("PATH_INFO") not in ROUTES:
            return django_application(environ, start_response)
        try:
            response = token_service(WSGIRequest(environ))
        finally:
            housekeeping()
        headers = [
            *response.items(),
            *(("Set-Cookie", cookie.OutputString()) for cookie in response.cookies.values()),
        ]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return [response.content]

    return application
