from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout, user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode

from dashboard.two_factor import ENROL, PENDING_SESSION_KEY, VERIFY, two_factor_step


class HtmxLoginRedirectMiddleware:
    """An htmx request whose session expired gets a client-side redirect to the login page,
    instead of the login page swapped into a fragment."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, "htmx", False) and response.status_code == 302:
            login_url = resolve_url(settings.LOGIN_URL)
            if response["Location"].startswith(login_url):
                return HttpResponse(status=204, headers={"HX-Redirect": response["Location"]})
        return response


LOGIN_AT = "keyward_login_at"


def _stamp_login(sender, request, user, **kwargs) -> None:
    request.session[LOGIN_AT] = time.time()


# Every login (the login view, force_login in tests) starts the absolute lifetime anew.
user_logged_in.connect(_stamp_login, dispatch_uid="keyward.session_login_at")


def _mark_two_factor_pending(sender, request, user, **kwargs) -> None:
    step = two_factor_step(user)
    if step:
        request.session[PENDING_SESSION_KEY] = step


# A password login is not complete while the user still has a code to give or, under
# KEYWARD_REQUIRE_2FA, an authenticator to enrol. Users without either (most tests'
# force_login personas, bin/dev's demo users) are not challenged.
user_logged_in.connect(_mark_two_factor_pending, dispatch_uid="keyward.two_factor_pending")


class TwoFactorMiddleware:
    """Holds a session whose login still needs its second factor on the verify (or enrol)
    page: every other console URL redirects there, an htmx request by HX-Redirect.

    Only sessions marked at login pay for the check. The token service's URLs and the
    health checks are never held. Placed after django-otp's OTPMiddleware, which tells
    whether the session has verified a device.
    """

    ALWAYS_OPEN = ("/token-srv/", "/.well-known/", "/api/", "/healthz", "/" + settings.STATIC_URL)
    OPEN_NAMES = {
        VERIFY: ("login", "logout", "dashboard:two_factor_verify"),
        ENROL: ("login", "logout", "dashboard:two_factor", "dashboard:two_factor_confirm"),
    }

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is None or PENDING_SESSION_KEY not in session:
            return self.get_response(request)
        step = self._step(request)
        if step is None or self._is_open(request.path, step):
            return self.get_response(request)
        target = self._step_url(step, request.get_full_path())
        if getattr(request, "htmx", False):
            return HttpResponse(status=204, headers={"HX-Redirect": target})
        return redirect(target)

    @staticmethod
    def _step(request: HttpRequest) -> str | None:
        """The step still due, re-read each time: an admin may have reset the device, or the
        setting changed. Clears the mark once nothing is due."""
        user = request.user
        step = None
        if user.is_authenticated and not user.is_verified():
            step = two_factor_step(user)
        if step is None:
            request.session.pop(PENDING_SESSION_KEY, None)
        else:
            request.session[PENDING_SESSION_KEY] = step
        return step

    def _is_open(self, path: str, step: str) -> bool:
        if path.startswith(self.ALWAYS_OPEN):
            return True
        return path in {reverse(name) for name in self.OPEN_NAMES[step]}

    @staticmethod
    def _step_url(step: str, next_path: str) -> str:
        name = "dashboard:two_factor_verify" if step == VERIFY else "dashboard:two_factor"
        return f"{reverse(name)}?{urlencode({'next': next_path})}"


class SessionLifetimeMiddleware:
    """Logs a console user out KEYWARD_SESSION_MAX_SECONDS after login, however active.

    The idle limit is Django's own (SESSION_COOKIE_AGE, renewed by SESSION_SAVE_EVERY_REQUEST);
    this one caps a session kept alive by a page left polling. Placed inside
    HtmxLoginRedirectMiddleware, so an htmx request is sent to the login page by HX-Redirect.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            login_at = request.session.setdefault(LOGIN_AT, time.time())
            if time.time() - login_at > settings.KEYWARD_SESSION_MAX_SECONDS:
                logout(request)
                return redirect_to_login(request.get_full_path())
        return self.get_response(request)


class NoStoreForUsersMiddleware:
    """What a logged-in user sees (secrets shown once, audit rows, client lists) stays out of
    browser and proxy caches: the back button after logout must not show it again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        # A view that already said no-store (the one-time secret pages) is left as it is.
        if user is not None and user.is_authenticated and not _says_no_store(response):
            add_never_cache_headers(response)
        return response


def _says_no_store(response: HttpResponse) -> bool:
    return "no-store" in response.headers.get("Cache-Control", "")
