"""What one access token costs to sign and verify, against the bare signature.

    .venv/bin/python bench/jose_cost.py [--rounds 20]

For ES256, RS256 and EdDSA it times, in one process and interleaved, CPU time per call
(best of the rounds, so another process's load shows less):

- the bare `cryptography` signature / verification over the same bytes (the floor);
- `tokens.keys.KeyRing.sign` (joserfc `jws.serialize_compact`, the hot path) and the
  calls `tokens.keys` verifies with (`jws.extract_compact` + `jws.validate_compact`);
- `jwt.encode` / `jwt.decode` with the same key and registry, the other public calls.

Needs no database: the keys are generated here. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import (  # noqa: E402
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc import jws, jwt  # noqa: E402
from joserfc.jwk import ECKey, OKPKey, RSAKey  # noqa: E402

from tokens.keys import KeyRing, LoadedKey  # noqa: E402

NOW = int(time.time())
CLAIMS = {
    "iss": "https://keyward.example",
    "sub": "svc-abcdefgh",
    "aud": "https://api.example",
    "exp": NOW + 3600,
    "iat": NOW,
    "jti": "x" * 22,
    "client_id": "svc-abcdefgh",
    "scope": "orders:read orders:write",
}
GENERATE = {
    "ES256": lambda: ECKey.generate_key("P-256", private=True),
    "RS256": lambda: RSAKey.generate_key(2048, private=True),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519", private=True),
}
ECDSA = ec.ECDSA(hashes.SHA256())


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def bare_sign(algorithm: str, private, data: bytes) -> bytes:
    if algorithm == "RS256":
        return private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if algorithm == "ES256":
        r, s = decode_dss_signature(private.sign(data, ECDSA))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return private.sign(data)


def bare_verify(algorithm: str, public, signature: bytes, data: bytes) -> None:
    if algorithm == "RS256":
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif algorithm == "ES256":
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        public.verify(encode_dss_signature(r, s), data, ECDSA)
    else:
        public.verify(signature, data)


def measure(variants: dict, number: int, rounds: int) -> dict[str, float]:
    """Best CPU time per call in µs, the variants interleaved round by round."""
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, function in variants.items():
            seconds = timeit.Timer(function, timer=time.process_time).timeit(number)
            best[name] = min(best[name], seconds / number * 1e6)
    return best


def verify(key: LoadedKey, token: str) -> dict:
    signed = jws.extract_compact(token.encode())
    assert jws.validate_compact(signed, key.jwk, registry=key.registry)
    return orjson.loads(signed.payload)


def run(algorithm: str, rounds: int) -> dict[str, float]:
    generated = GENERATE[algorithm]()
    kid = generated.thumbprint()
    pem = generated.as_pem(private=True)
    key = LoadedKey.imported(kid=kid, algorithm=algorithm, status="active", data=pem)
    ring = KeyRing(state=((kid, "active"),), keys={kid: key}, active=key)
    private = key.jwk.private_key
    public = private.public_key()
    token = ring.sign(CLAIMS)
    header, payload, signature = token.encode().split(b".")
    signing_input = header + b"." + payload
    raw_signature = base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4))
    number = 100 if algorithm == "RS256" else 400
    signing = measure(
        {
            "sign: bare cryptography": lambda: bare_sign(algorithm, private, signing_input),
            "sign: KeyRing.sign (jws.serialize_compact)": lambda: ring.sign(CLAIMS),
            "sign: jwt.encode": lambda: jwt.encode(
                key.header, CLAIMS, key.jwk, registry=key.registry
            ),
        },
        number,
        rounds,
    )
    verifying = measure(
        {
            "verify: bare cryptography": lambda: bare_verify(
                algorithm, public, raw_signature, signing_input
            ),
            "verify: extract_compact + validate_compact": lambda: verify(key, token),
            "verify: jwt.decode": lambda: jwt.decode(token, key.jwk, registry=key.registry),
        },
        400,
        rounds,
    )
    return signing | verifying


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    for algorithm in GENERATE:
        for name, micros in run(algorithm, rounds).items():
            print(f"{algorithm:6} {name:44} {micros:7.1f} µs")


if __name__ == "__main__":
    main()
