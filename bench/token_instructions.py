"""Instructions per token request, in process: a load-independent A/B for the token path.

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sys_call_tracing \\
        --dump-after=sys_call_tracing --callgrind-out-file=/tmp/tok.out \\
        .venv/bin/python -m bench.token_instructions ES256 full,view,sign,emit
    grep -h '^totals' /tmp/tok.out.*   # one file per part, in the order given

Drives `keyward.wsgi.application` with a prepared WSGI environ (the request wrk sends:
POST /token-srv/token, Basic credentials), so it runs exactly the code granian runs, minus
the server. Each part runs `--requests` times inside `sys.call_tracing`, which callgrind
uses as its on/off switch, so the counts leave out startup and warm-up; divide a total by
`--requests`. Without valgrind it prints CPU µs per request instead, which other processes'
load skews (the instruction counts do not move with load). Parts:

- full: the WSGI application, as served;
- view: `tokens.views.token` called directly (no handler, middleware or signals);
- sign: `KeyRing.sign` of one token's claims;
- emit: building the event and the Redis round trip (`tokens.sink.emit`);
- floor: `bench/floor_app.py` (the bare token work, no Django, no Redis) with a key of ALG,
  for the same request.

Needs PostgreSQL and Redis as the settings name them (DATABASE_URL, REDIS_URL) with the
schema migrated; it registers a client and rotates until a key of ALG signs. RSA signatures
run other OpenSSL code under valgrind than on the CPU, so compare RS256 totals without the
signature (full minus sign). Not a test: it measures.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")
# Under valgrind a process runs ~50x slower: without this, the 0.9 s client cache would
# reload every few requests and count queries the served path makes once per 0.9 s.
os.environ.setdefault("KEYWARD_CLIENT_CACHE_SECONDS", "3600")

from django.core.handlers.wsgi import WSGIRequest  # noqa: E402

from keyward.wsgi import application  # noqa: E402

BODY = b"grant_type=client_credentials"
WARM_UP = 300


def _prepare(algorithm: str) -> str:
    """A registered client's Basic header, with a key of `algorithm` signing."""
    from audit.services import Actor
    from clients import services
    from tokens.keys import key_ring_reset
    from tokens.models import SigningKey
    from tokens.services import signing_key_rotate

    actor = Actor.cli()
    for _ in range(3):
        active = SigningKey.objects.filter(status=SigningKey.Status.ACTIVE).first()
        if active is not None and active.algorithm == algorithm:
            break
        signing_key_rotate(actor=actor, algorithm=algorithm, force=True)
    key_ring_reset()
    client, secret = services.client_register(actor=actor, name=f"instructions {time.time()}")
    return "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()


def _environ(auth: str) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/token-srv/token",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(BODY)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": auth,
        "HTTP_USER_AGENT": "wrk",
        "wsgi.input": io.BytesIO(BODY),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _parts(auth: str, algorithm: str) -> dict:
    from tokens import sink, views
    from tokens.keys import key_ring

    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def full():
        response = application(_environ(auth), start_response)
        b"".join(response)
        if hasattr(response, "close"):  # the WSGI server's duty; the token front returns a list
            response.close()
        if not statuses[-1].startswith("200"):
            sys.exit(f"the token request failed: {statuses[-1]}")

    def view():
        views.token(WSGIRequest(_environ(auth)))

    claims = {"iss": "http://127.0.0.1", "sub": "c", "aud": "a", "exp": 2, "jti": "j" * 22}

    def sign():
        key_ring().sign(claims)

    def emit():
        event = views._event("token", WSGIRequest(_environ(auth)), "127.0.0.1")
        sink.emit(event, ip="127.0.0.1", counters=views._client_counters("c", "127.0.0.1"))

    floor = _floor(auth, algorithm)
    return {"full": full, "view": view, "sign": sign, "emit": emit, "floor": floor}


def _floor(auth: str, algorithm: str):
    """bench/floor_app.py's application for the same Basic credentials, imported on first
    use (it reads its configuration from the environment when imported)."""
    import hashlib
    import hmac

    from django.conf import settings
    from joserfc.jwk import ECKey, RSAKey

    client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
    pepper = settings.KEYWARD_SECRET_PEPPER
    key = RSAKey.generate_key(2048) if algorithm == "RS256" else ECKey.generate_key("P-256")
    statuses = []
    application_ = None

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def floor():
        nonlocal application_
        if application_ is None:
            os.environ.update(
                FLOOR_ALG=algorithm,
                FLOOR_PRIVATE_KEY=key.as_pem(private=True).decode(),
                FLOOR_CLIENT_ID=client_id,
                FLOOR_SECRET_HASH=hmac.new(
                    pepper.encode(), secret.encode(), hashlib.sha256
                ).hexdigest(),
                FLOOR_PEPPER=pepper,
                FLOOR_SCOPES="",
                FLOOR_ISSUER=settings.KEYWARD_ISSUER,
                FLOOR_AUDIENCE=settings.KEYWARD_DEFAULT_AUDIENCE,
            )
            from bench.floor_app import application as application_
        b"".join(application_(_environ(auth), start_response))
        if not statuses[-1].startswith("200"):
            sys.exit(f"the floor's token request failed: {statuses[-1]}")

    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("algorithm", choices=["RS256", "ES256", "EdDSA"])
    parser.add_argument("parts", help="comma-separated: full, view, sign, emit, floor")
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    parts = _parts(_prepare(args.algorithm), args.algorithm)
    chosen = args.parts.split(",")
    if unknown := set(chosen) - set(parts):
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")

    def run(part):
        for _ in range(args.requests):
            part()

    for name in chosen:
        for _ in range(WARM_UP):
            parts[name]()
        started = time.process_time()
        sys.call_tracing(run, (parts[name],))
        cpu_us = (time.process_time() - started) / args.requests * 1e6
        print(f"{args.algorithm} {name}: {cpu_us:,.1f} µs CPU per request", flush=True)


if __name__ == "__main__":
    main()
