"""Two-factor sign-in: TOTP authenticators and recovery codes (django-otp).

A console user enrols an authenticator app (a `SealedTOTPDevice`) and gets
`KEYWARD_2FA_RECOVERY_CODES` single-use recovery codes (a django-otp StaticDevice). After the
password, a user with a confirmed authenticator must give a code before any console page
works; with KEYWARD_REQUIRE_2FA on, an admin without one must enrol first. keyward/middleware.py
holds the gate; this module decides the step and writes (each write with its audit row).

django-otp stores static tokens in plain text; ours hold a keyed hash of the code instead
(`recovery_code_hash`), so a database dump gives no usable recovery code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from audit.services import Actor, admin_action_record
from base.roles import Role, user_role

from .models import SealedTOTPDevice, totp_key_seal

PENDING_SESSION_KEY = "keyward_2fa_pending"
VERIFY, ENROL = "verify", "enrol"
TOTP_KEY_BYTES = 20
_RECOVERY_ALPHABET = re.compile(r"[^a-z2-7]")


class TwoFactorRefused(Exception):
    """A two-factor change that may not be made, such as an admin resetting their own."""


# --- Reads ---------------------------------------------------------------------------------


def authenticator_for(user: User) -> SealedTOTPDevice | None:
    return SealedTOTPDevice.objects.filter(user=user, confirmed=True).first()


def recovery_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def two_factor_step(user: User) -> str | None:
    """What a signed-in user must still do before the console: verify, enrol, or nothing."""
    if SealedTOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return VERIFY
    if settings.KEYWARD_REQUIRE_2FA and user_role(user) == Role.ADMIN:
        return ENROL
    return None


def enrolment_qr_data_uri(device: SealedTOTPDevice) -> str:
    """The otpauth:// URL as an SVG QR code in a data: URI (the CSP allows data: images and
    no inline script; an <img> also keeps the SVG's own attributes out of the page)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def enrolment_key_text(device: SealedTOTPDevice) -> str:
    """The key in base32 groups of four, for typing into an authenticator by hand."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


# --- Recovery codes ------------------------------------------------------------------------


def recovery_code_generate() -> str:
    """Ten base32 characters (50 bits) as xxxxx-xxxxx."""
    raw = base64.b32encode(secrets.token_bytes(7)).decode().lower()[:10]
    return f"{raw[:5]}-{raw[5:]}"


def recovery_code_hash(code: str) -> str:
    """Keyed hash of the normalised code, cut to StaticToken's 16 characters (80 bits)."""
    normalised = _RECOVERY_ALPHABET.sub("", code.lower())
    digest = hmac.new(
        settings.KEYWARD_SECRET_PEPPER.encode(), b"recovery:" + normalised.encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest).decode().lower()[:16]


def _recovery_codes_replace(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [recovery_code_generate() for _ in range(settings.KEYWARD_2FA_RECOVERY_CODES)]
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=recovery_code_hash(code)) for code in codes
    )
    return codes


# --- Writes --------------------------------------------------------------------------------


def two_factor_enrolment_start(*, user: User) -> SealedTOTPDevice:
    """The user's unconfirmed authenticator, made on first call with a fresh key.

    Not audited: an unconfirmed device signs nobody in; `two_factor_enrol` records the
    enrolment once a code proves the app holds the key.
    """
    device = SealedTOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = SealedTOTPDevice(user=user, name="Authenticator app", confirmed=False)
        device.key = totp_key_seal(secrets.token_bytes(TOTP_KEY_BYTES), user_id=user.pk)
        device.save()
    return device


def two_factor_enrol(*, actor: Actor, device: SealedTOTPDevice, code: str) -> list[str] | None:
    """Confirm `device` with a code from the app; returns the new recovery codes, or None
    when the code is wrong (django-otp's throttle then delays the next try)."""
    with transaction.atomic():
        device = SealedTOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not device.verify_token(code.strip()):
            return None
        user = device.user
        SealedTOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _recovery_codes_replace(user)
        admin_action_record(
            actor=actor,
            action="user.two_factor_enrol",
            target_type="user",
            target_id=user.username,
            target_label=user.username,
            after={"two_factor": True, "recovery_codes": len(codes)},
        )
    return codes


def two_factor_recovery_codes_regenerate(*, actor: Actor, user: User) -> list[str]:
    """New recovery codes for an enrolled user; the old ones stop working."""
    if authenticator_for(user) is None:
        raise TwoFactorRefused("Set up two-factor sign-in first.")
    with transaction.atomic():
        codes = _recovery_codes_replace(user)
        admin_action_record(
            actor=actor,
            action="user.two_factor_recovery_codes",
            target_type="user",
            target_id=user.username,
            target_label=user.username,
            after={"recovery_codes": len(codes)},
        )
    return codes


def two_factor_verify(*, actor: Actor, user: User, code: str) -> Device | None:
    """The device that accepts `code` (six digits: the app; else a recovery code), or None.

    A recovery code is used up and its use recorded; a failure is recorded too.
    """
    code = code.strip().replace(" ", "")
    with transaction.atomic():
        if re.fullmatch(r"\d{6}", code):
            device = SealedTOTPDevice.objects.select_for_update().filter(user=user, confirmed=True)
            device = device.first()
            verified = device if device is not None and device.verify_token(code) else None
        else:
            verified = _recovery_code_use(actor=actor, user=user, code=code)
        if verified is None:
            admin_action_record(
                actor=actor,
                action="user.two_factor_failure",
                target_type="user",
                target_id=user.username,
                target_label=user.username,
            )
    return verified


def _recovery_code_use(*, actor: Actor, user: User, code: str) -> StaticDevice | None:
    device = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if device is None or not device.verify_token(recovery_code_hash(code)):
        return None
    admin_action_record(
        actor=actor,
        action="user.two_factor_recovery_code_use",
        target_type="user",
        target_id=user.username,
        target_label=user.username,
        after={"recovery_codes_left": device.token_set.count()},
    )
    return device


def two_factor_reset(*, actor: Actor, user: User) -> None:
    """Remove a user's authenticator and recovery codes (a lost phone). They sign in with a
    password alone until they enrol again; under KEYWARD_REQUIRE_2FA an admin must."""
    if actor.user is not None and actor.user.pk == user.pk:
        raise TwoFactorRefused("You cannot reset your own two-factor sign-in; ask another admin.")
    with transaction.atomic():
        removed = SealedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
        SealedTOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        admin_action_record(
            actor=actor,
            action="user.two_factor_reset",
            target_type="user",
            target_id=user.username,
            target_label=user.username,
            before={"two_factor": removed},
            after={"two_factor": False},
        )
