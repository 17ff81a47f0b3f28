"""No console action repeats on reload: values shown once, and one-time form tokens.

1. A POST that produces a value to show once (a new client secret, a generated password)
   answers with a redirect and hands the value to the next page with `once_put`; that page
   reads it with `once_take`, which deletes it. A reload finds nothing and says so.
2. A form that creates something carries a one-time token (`{% form_token %}`). Its view,
   wrapped in `form_once`, spends the token in the same transaction as the write, so a
   second submission of that form (double click, reloading the POST, back and resubmit)
   finds it spent and is redirected to the first submission's result with a notice.

Both live in the database, not the session or the cache. Sessions are saved on every
request (SESSION_SAVE_EVERY_REQUEST), so two overlapping requests of one browser — the
cancelled first click of a double click and the second — each write back the session they
loaded, and a value put into it by one is lost or brought back by the other. The cache is
per process in embedded mode and fails soft with Redis down. A database row is taken by
exactly one request (row lock, unique constraint) whatever process serves it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from .crypto import fernet_for
from .models import FormTokenUse, ShownOnce

# The redirect after the POST is read at once; the margin covers a slow page, no more.
SHOWN_ONCE_SECONDS = 600
FORM_TOKEN_FIELD = "form_token"  # noqa: S105 - a field name, not a secret
# Older forms are refused (the session's absolute limit is 12 h, so no real form is older).
FORM_TOKEN_MAX_AGE = 24 * 3600
REPEAT_NOTICE = "That form had already been sent, so nothing was done twice. This is its result."


# Values shown once ------------------------------------------------------------------------


def _fernet(secret: str) -> Fernet:
    return fernet_for(secret, b"keyward shown-once values v1")


def _session_hash(request: HttpRequest, *, create: bool) -> str | None:
    session = request.session
    if session.session_key is None:
        if not create:
            return None
        session.save()
    return hashlib.sha256(session.session_key.encode()).hexdigest()


def once_put(request: HttpRequest, name: str, value: dict) -> None:
    """Keep `value` (JSON-able) for this browser session's next `once_take(name)`.

    Call it inside the transaction of the write, so a failed write leaves nothing behind.
    """
    now = timezone.now()
    ShownOnce.objects.filter(created_at__lt=now - timedelta(seconds=SHOWN_ONCE_SECONDS)).delete()
    ciphertext = _fernet(settings.SECRET_KEY).encrypt(json.dumps(value).encode()).decode()
    ShownOnce.objects.update_or_create(
        session_hash=_session_hash(request, create=True),
        name=name,
        defaults={"ciphertext": ciphertext, "created_at": now},
    )


def once_take(request: HttpRequest, name: str) -> dict | None:
    """The value `once_put` left for this session under `name`, deleted as it is read;
    None when there is none (already shown, expired, or another session's)."""
    session_hash = _session_hash(request, create=False)
    if session_hash is None:
        return None
    with transaction.atomic():
        # The row lock makes two simultaneous reads one reader and one None.
        row = (
            ShownOnce.objects.select_for_update()
            .filter(session_hash=session_hash, name=name)
            .first()
        )
        if row is None:
            return None
        row.delete()
    try:
        plain = _fernet(settings.SECRET_KEY).decrypt(row.ciphertext, ttl=SHOWN_ONCE_SECONDS)
    except InvalidToken:
        return None
    return json.loads(plain)


# One-time form tokens ---------------------------------------------------------------------


def _signer(request: HttpRequest) -> signing.TimestampSigner:
    # Bound to the user: a form token is good only for the person it was issued to.
    return signing.TimestampSigner(salt=f"keyward.form-token:{request.user.pk}")


def form_token_issue(request: HttpRequest) -> str:
    """A new token for one form. Signed, so issuing one writes nothing."""
    return _signer(request).sign(secrets.token_urlsafe(24))


def form_once(view: Callable | None = None, *, result: Callable[..., str] | None = None):
    """Spend the POST's form token with the view's writes, in one transaction.

    1. No token in the POST (a script, not one of our forms): the view runs as it is.
       Every creating form of the console carries one; tests/dashboard/test_no_repeats.py
       checks that.
    2. A token that does not verify or is older than FORM_TOKEN_MAX_AGE: 400, nothing done.
    3. A spent token: redirect to the first submission's result with a notice.
    4. Otherwise claim the token (unique row; a twin request waits for it on the row lock)
       and run the view in the same transaction. A redirect (or htmx's HX-Redirect) is the
       result to send twins to; a view answering with a fragment names its result with
       `result(request, *args, **kwargs)`. Any other answer (a form with errors) undoes the
       claim, so the corrected form can be sent.
    """

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            token = request.POST.get(FORM_TOKEN_FIELD) if request.method == "POST" else None
            if not token:
                return view(request, *args, **kwargs)
            try:
                nonce = _signer(request).unsign(token, max_age=FORM_TOKEN_MAX_AGE)
            except signing.BadSignature:
                return render(request, "base/form_expired.html", status=400)
            earlier = FormTokenUse.objects.filter(nonce=nonce).first()
            if earlier is not None:
                return _repeated(request, earlier)
            return _spend(request, nonce, view, args, kwargs, result)

        return wrapper

    return decorate(view) if view is not None else decorate


def _spend(request, nonce, view, args, kwargs, result) -> HttpResponse:
    with transaction.atomic():
        try:
            with transaction.atomic():
                use = FormTokenUse.objects.create(nonce=nonce)
        except IntegrityError:  # a twin committed between our check and our insert
            return _repeated(request, FormTokenUse.objects.get(nonce=nonce))
        response = view(request, *args, **kwargs)
        url = _result_url(response)
        if not url and result is not None and response.status_code < 300:
            url = result(request, *args, **kwargs)
        if not url:
            transaction.set_rollback(True)
            return response
        use.result_url = url
        use.save(update_fields=["result_url"])
    FormTokenUse.objects.filter(
        used_at__lt=timezone.now() - timedelta(seconds=FORM_TOKEN_MAX_AGE)
    ).delete()
    return response


def _result_url(response: HttpResponse) -> str:
    if 300 <= response.status_code < 400:
        return response["Location"]
    return response.headers.get("HX-Redirect", "")


def _repeated(request: HttpRequest, earlier: FormTokenUse) -> HttpResponse:
    messages.info(request, REPEAT_NOTICE)
    url = earlier.result_url or "/"
    if getattr(request, "htmx", False):
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)
