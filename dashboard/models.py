"""Two-factor devices: django-otp's TOTP device, its key sealed at rest."""

from __future__ import annotations

from binascii import unhexlify
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice


@lru_cache(maxsize=4)
def _siv(secret: str) -> AESSIV:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=b"keyward totp keys v1"
    ).derive(secret.encode())
    return AESSIV(derived)


def totp_key_seal(key: bytes, *, user_id: int) -> str:
    """The TOTP key encrypted for `user_id`'s row, hex-encoded.

    django-otp keeps TOTP keys in plain hex in a CharField of 80 characters. A database
    dump must not hand out second factors, so the column holds AES-SIV ciphertext instead:
    deterministic but authenticated, and with no nonce it fits (20-byte key + 16-byte tag
    = 72 hex characters), where Fernet or AES-GCM would not. The user id is bound in, so a
    sealed key copied to another user's row does not open.
    """
    sealed = _siv(settings.KEYWARD_KEY_ENCRYPTION_SECRET).encrypt(key, [str(user_id).encode()])
    return sealed.hex()


def totp_key_open(sealed: str, *, user_id: int) -> bytes:
    return _siv(settings.KEYWARD_KEY_ENCRYPTION_SECRET).decrypt(
        unhexlify(sealed), [str(user_id).encode()]
    )


class SealedTOTPDevice(TOTPDevice):
    """A TOTP device whose `key` column holds `totp_key_seal`'s ciphertext.

    A proxy of django-otp's model: same table, verification, throttling and replay guard;
    only the key is read through `totp_key_open`. Rows read as plain TOTPDevice (django-otp's
    own helpers) fail closed: the ciphertext is not the key, so no code matches.
    """

    class Meta:
        proxy = True
        verbose_name = "TOTP device (sealed key)"

    @property
    def bin_key(self) -> bytes:
        return totp_key_open(self.key, user_id=self.user_id)
