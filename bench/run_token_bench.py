"""Token-endpoint benchmark: Keyward (RS256, ES256, introspection) beside django-oauth-toolkit,
node's oidc-provider and the floor (bench/floor_app.py: the bare token work in Python).

Run with `bin/bench` (see bench/README.md). Starts Keyward as deployed (bin/serve), the other
Django servers under gunicorn, all on PostgreSQL and Redis, and oidc-provider under node;
drives each with wrk at a
fixed concurrency after a warm-up, and prints requests/s, p50, p99, errors and server CPU per
request, pooled over `--rounds` rounds run in alternating order. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# e.g. BENCH_GUNICORN_ARGS="--worker-class gthread --threads 4" to compare worker models.
GUNICORN_EXTRA_ARGS = os.environ.get("BENCH_GUNICORN_ARGS", "").split()
TARGETS = {"RS256": 1800, "ES256": 2500, "introspect": 2500}
SIGN_AND_READ = "bare view + ES256 sign + 1 row"
# The figures for scale, from its 2-core machine (sync workers).
REFERENCE_RATES = {"bare Django JSON view": 5000, SIGN_AND_READ: 2700}
# Keyward's tokens/s against oidc-provider's best configuration for the same algorithm.
PEER_TARGETS = {"RS256": 1.0, "ES256": 0.95}

OIDC_DIR = ROOT / "bench" / "oidc_provider"
OIDC_CLIENT_ID = "bench"
OIDC_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
OIDC_SCOPE = "bench:read"
OIDC_RESOURCE = "https://api.bench.invalid"
# Keyward grants all of a client's scopes when none is asked for, oidc-provider none: ask
# for the scope so that both issue the same kind of token.
OIDC_BODY = f"grant_type=client_credentials&scope={OIDC_SCOPE}"

KEYWARD_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "KEYWARD_SECRET_PEPPER": "bench-pepper",
    "KEYWARD_ISSUER": "http://127.0.0.1",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "REDIS_URL": REDIS_URL,
    "LOG_LEVEL": "WARNING",
    # One client from one address drives all the load: lift the limits for the benchmark.
    "KEYWARD_RATE_LIMIT_PER_CLIENT": str(10**9),
    "KEYWARD_RATE_LIMIT_PER_IP": str(10**9),
    "KEYWARD_RATE_LIMIT_INTROSPECT_PER_CALLER": str(10**9),
}

SEED_KEYWARD = """
import json
from audit.services import Actor
from clients import services
from tokens.services import signing_key_rotate
actor = Actor.cli()
scope = services.scope_create(actor=actor, name="bench:read")
client, secret = services.client_register(actor=actor, name="bench", scopes=[scope])
checker, checker_secret = services.client_register(
    actor=actor, name="bench-introspector", can_introspect=True
)
print("SEED " + json.dumps({"client_id": client.client_id, "secret": secret,
      "checker_id": checker.client_id, "checker_secret": checker_secret}))
"""

ACTIVATE_KEY = """
from audit.services import Actor
from tokens.services import signing_key_rotate
from tokens.models import SigningKey
# Rotate until a key of the wanted algorithm signs.
for _ in range(3):
    active = SigningKey.objects.filter(status="active").first()
    if active is not None and active.algorithm == "{alg}":
        break
    signing_key_rotate(actor=Actor.cli(), algorithm="{alg}", force=True)
print("ACTIVE", SigningKey.objects.get(status="active").algorithm)
"""

SEED_DOT = """
import json
from oauth2_provider.models import Application
app = Application.objects.create(
    name="bench", client_type="confidential", authorization_grant_type="client-credentials",
    client_secret="bench-secret-0123456789abcdef0123456789abcdef",
)
print("SEED " + json.dumps({"client_id": app.client_id,
      "secret": "bench-secret-0123456789abcdef0123456789abcdef"}))
"""


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    cpu_ms_per_request: float
    services_cpu_ms_per_request: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(name: str) -> str:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_SERVER}/{name}"


def manage(env: dict, *args: str, settings: str = "keyward.settings") -> str:
    full_env = os.environ | env | {"DJANGO_SETTINGS_MODULE": settings}
    result = subprocess.run(
        [PYTHON, "-m", "django", *args], cwd=ROOT, env=full_env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"manage {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def seed(env: dict, code: str, settings: str = "keyward.settings") -> dict:
    out = manage(env, "shell", "-c", code, settings=settings)
    line = next(line for line in out.splitlines() if line.startswith("SEED "))
    return json.loads(line[5:])


def process_tree_ticks(root_pid: int) -> int:
    pids = [root_pid] + [int(p) for p in _children(root_pid)]
    return sum(_ticks(pid) for pid in pids)


def _children(pid: int) -> list[str]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return out.split()


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def services_ticks() -> int:
    out = subprocess.run(
        ["pgrep", "-f", "redis-server|postgres"], capture_output=True, text=True
    ).stdout
    return sum(_ticks(int(pid)) for pid in out.split())


@contextlib.contextmanager
def keyward_server(env: dict, workers: int):
    """Keyward's token service as deployed: bin/serve (granian over keyward.wsgi) with the
    settings of docker-compose.yml's tokens service."""
    port = free_port()
    serve_env = token_service_settings() | {
        "PYTHON": PYTHON,
        "GRANIAN_HOST": "127.0.0.1",
        "GRANIAN_PORT": str(port),
    }
    if workers:
        serve_env["GRANIAN_WORKERS"] = str(workers)
    with _serving([str(ROOT / "bin" / "serve")], env | serve_env, port) as server:
        yield server


def token_service_settings() -> dict[str, str]:
    """The GRANIAN_* values docker-compose.yml's tokens service sets, unless this shell
    sets them (to compare another setting)."""
    compose = (ROOT / "docker-compose.yml").read_text()
    block = re.search(r"^  tokens:\n(.*?)^  \w+:\n", compose, re.M | re.S)
    if block is None:
        sys.exit("docker-compose.yml has no tokens service")
    found = dict(re.findall(r'^\s+(GRANIAN_\w+): "([^"]*)"$', block.group(1), re.M))
    return {name: value for name, value in found.items() if name not in os.environ}


@contextlib.contextmanager
def gunicorn(env: dict, app: str, workers: int):
    """gunicorn's sync workers (WSGI): django-oauth-toolkit's usual deployment, and
    Keyward's own for --compare-sync. One worker more than the cores by default."""
    port = free_port()
    command = [
        GUNICORN,
        app,
        "--workers",
        str(workers or (os.cpu_count() or 1) + 1),
        "--worker-class",
        "sync",
        "--backlog",
        "2048",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        *GUNICORN_EXTRA_ARGS,
    ]
    with _serving(command, env, port) as server:
        yield server


@contextlib.contextmanager
def _serving(command: list[str], env: dict, port: int):
    proc = subprocess.Popen(command, cwd=ROOT, env=os.environ | env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.2)
        else:
            sys.exit(f"{command[0]} did not start")
        # Let every worker finish loading Django before the warm-up starts.
        time.sleep(2)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def wrk(url: str, seconds: int, concurrency: int, auth: str, body: str) -> dict:
    env = os.environ | {"BENCH_AUTH": auth, "BENCH_BODY": body}
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--timeout",
            "30s",  # DOT with PBKDF2 queues for seconds; a timeout would count as an error
            "-s",
            str(ROOT / "bench" / "wrk_post.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    return json.loads(line[len("BENCH_JSON ") :])


def measure(name, server, url, args, auth="", body="grant_type=client_credentials", seconds=None):
    proc, _base = server
    seconds = seconds or args.duration
    log(f"{name}: warm-up {args.warmup}s")
    wrk(url, args.warmup, args.concurrency, auth, body)
    log(f"{name}: measuring {seconds}s at concurrency {args.concurrency}")
    app_before, services_before = process_tree_ticks(proc.pid), services_ticks()
    stats = wrk(url, seconds, args.concurrency, auth, body)
    app_ticks = process_tree_ticks(proc.pid) - app_before
    svc_ticks = services_ticks() - services_before
    requests = max(stats["requests"], 1)
    result = Result(
        name=name,
        requests=stats["requests"],
        seconds=stats["duration_us"] / 1e6,
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        errors=stats["socket_errors"] + stats["non_2xx"],
        non_2xx=stats["non_2xx"],
        cpu_ms_per_request=app_ticks / CLOCK_TICKS * 1000 / requests,
        services_cpu_ms_per_request=svc_ticks / CLOCK_TICKS * 1000 / requests,
    )
    log(
        f"{name}: {result.rate:,.0f}/s p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms "
        f"errors {result.errors} cpu {result.cpu_ms_per_request:.3f} ms/req"
    )
    return result


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def fetch_token(url: str, auth: str, body: str = "grant_type=client_credentials") -> str:
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local server
        return json.load(response)["access_token"]


def bench_keyward(args) -> list[Result]:
    env = KEYWARD_ENV | {"DATABASE_URL": recreate_database("keyward_bench")}
    redis.Redis.from_url(REDIS_URL).flushdb()
    log("Keyward: migrating and seeding")
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")  # as a deployment would; whitenoise wants it
    creds = seed(env, SEED_KEYWARD)
    auth = basic(creds["client_id"], creds["secret"])
    results = []
    for alg in ("RS256", "ES256"):
        manage(env, "shell", "-c", ACTIVATE_KEY.format(alg=alg))
        if args.compare_sync:
            with gunicorn(env, "keyward.wsgi:application", args.workers) as server:
                url = server[1] + "/token-srv/token"
                name = f"Keyward token {alg}, sync workers"
                results.append(measure(name, server, url, args, auth=auth))
        with keyward_server(env, args.workers) as server:
            url = server[1] + "/token-srv/token"
            results.append(measure(f"Keyward token {alg}", server, url, args, auth=auth))
            if alg == "ES256":
                token = fetch_token(server[1] + "/token-srv/token", auth)
                checker = basic(creds["checker_id"], creds["checker_secret"])
                url = server[1] + "/token-srv/introspect"
                results.append(
                    measure("Keyward introspect", server, url, args, checker, f"token={token}")
                )
    return results


FLOOR_CLIENT_ID = "floor"
FLOOR_SECRET = "kwsec_floor-0123456789abcdef0123456789abcdef0123"
FLOOR_PEPPER = "bench-pepper"


def serve_defaults() -> dict[str, str]:
    """bin/serve's GRANIAN_* settings (its defaults), so the floor runs on the same stack."""
    text = (ROOT / "bin" / "serve").read_text()
    defaults = {}
    for name, value in re.findall(r'^export (GRANIAN_\w+)="?\$\{\w+:-([^}]*)\}"?$', text, re.M):
        defaults[name] = value
    for name, value in re.findall(r"^export (GRANIAN_\w+)=([^\s\"$]+)$", text, re.M):
        defaults[name] = value
    return defaults


@contextlib.contextmanager
def floor_server(alg: str, private_pem: str, workers: int):
    """bench/floor_app.py under granian with the token service's settings (bin/serve's and
    docker-compose.yml's tokens service's)."""
    port = free_port()
    secret_hash = hmac.new(FLOOR_PEPPER.encode(), FLOOR_SECRET.encode(), hashlib.sha256)
    env = (
        serve_defaults()
        | token_service_settings()
        | {
            "GRANIAN_HOST": "127.0.0.1",
            "GRANIAN_PORT": str(port),
            "FLOOR_ALG": alg,
            "FLOOR_PRIVATE_KEY": private_pem,
            "FLOOR_CLIENT_ID": FLOOR_CLIENT_ID,
            "FLOOR_SECRET_HASH": secret_hash.hexdigest(),
            "FLOOR_PEPPER": FLOOR_PEPPER,
            "FLOOR_SCOPES": OIDC_SCOPE,
            "FLOOR_ISSUER": KEYWARD_ENV["KEYWARD_ISSUER"],
            "FLOOR_AUDIENCE": KEYWARD_ENV["KEYWARD_ISSUER"] + "/api",
        }
    )
    if workers:
        env["GRANIAN_WORKERS"] = str(workers)
    command = [PYTHON, "-m", "granian", "bench.floor_app:application"]
    with _serving(command, env, port) as server:
        yield server


def bench_floor(args) -> list[Result]:
    """The floor for RS256 and ES256: Keyward's stack without Django, PostgreSQL or Redis."""
    auth = basic(FLOOR_CLIENT_ID, FLOOR_SECRET)
    results = []
    for alg in ("RS256", "ES256"):
        key = RSAKey.generate_key(2048) if alg == "RS256" else ECKey.generate_key("P-256")
        with floor_server(alg, key.as_pem(private=True).decode(), args.workers) as server:
            url = server[1] + "/token"
            token = fetch_token(url, auth)
            claims = jwt.decode(token, key, algorithms=[alg]).claims
            if claims.get("client_id") != FLOOR_CLIENT_ID or claims.get("scope") != OIDC_SCOPE:
                sys.exit(f"floor {alg}: unexpected token claims {claims}")
            results.append(measure(f"floor {alg}", server, url, args, auth=auth))
    return results


def bench_dot(args) -> list[Result]:
    results = []
    for hasher, seconds in (("md5", args.duration), ("default", args.dot_slow_duration)):
        env = {"DATABASE_URL": recreate_database("keyward_bench_dot"), "BENCH_DOT_HASHER": hasher}
        settings = "bench.dot_site.settings"
        log(f"django-oauth-toolkit ({hasher} hasher): migrating and seeding")
        manage(env, "migrate", "--noinput", settings=settings)
        creds = seed(env, SEED_DOT, settings=settings)
        auth = basic(creds["client_id"], creds["secret"])
        # WSGI with sync workers: django-oauth-toolkit's usual deployment, and that of the
        # issue's reference figures.
        with gunicorn(
            env | {"DJANGO_SETTINGS_MODULE": settings}, "bench.dot_site.wsgi", args.workers
        ) as server:
            label = "cheap md5 hasher" if hasher == "md5" else "default PBKDF2 hasher"
            url = server[1] + "/o/token/"
            results.append(measure(f"DOT token, {label}", server, url, args, auth, seconds=seconds))
            if hasher == "md5":
                url = server[1] + "/bare/"
                results.append(measure("bare Django JSON view", server, url, args))
                url = server[1] + "/bare-sign/"
                results.append(measure(SIGN_AND_READ, server, url, args))
    return results


def oidc_provider_installed() -> bool:
    """node and oidc-provider's packages; installs them with `npm ci` when missing."""
    if not (shutil.which("node") and shutil.which("npm")):
        log("oidc-provider: SKIPPED, node and npm are not installed (the peer needs Node.js)")
        return False
    installed = OIDC_DIR / "node_modules" / ".package-lock.json"
    lock = OIDC_DIR / "package-lock.json"
    if not installed.exists() or lock.stat().st_mtime > installed.stat().st_mtime:
        log("oidc-provider: node_modules missing or older than package-lock.json: npm ci")
        if subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR).returncode:
            sys.exit("npm ci failed in bench/oidc_provider")
    package = OIDC_DIR / "node_modules" / "oidc-provider" / "package.json"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    log(f"oidc-provider {json.loads(package.read_text())['version']} on node {node}")
    return True


@contextlib.contextmanager
def oidc_provider(alg: str, processes: int):
    """bench/oidc_provider/server.js: one node process, or a cluster of `processes` workers."""
    port = free_port()
    env = os.environ | {
        "BENCH_PORT": str(port),
        "BENCH_ALG": alg,
        "BENCH_PROCESSES": str(processes),
        "BENCH_CLIENT_ID": OIDC_CLIENT_ID,
        "BENCH_CLIENT_SECRET": OIDC_SECRET,
        "BENCH_SCOPE": OIDC_SCOPE,
        "BENCH_RESOURCE": OIDC_RESOURCE,
    }
    proc = subprocess.Popen(
        ["node", "server.js"],
        cwd=OIDC_DIR,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_ready(proc)
        # Keep draining its stdout so that a chatty provider never blocks on a full pipe.
        threading.Thread(
            target=shutil.copyfileobj, args=(proc.stdout, sys.stdout), daemon=True
        ).start()
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def wait_for_ready(proc: subprocess.Popen, seconds: float = 30) -> None:
    """Until server.js prints READY: every worker listens, not just the first one."""
    # Killing it on the deadline ends the read below with end-of-file.
    timer = threading.Timer(seconds, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            if line.strip() == "READY":
                return
            print(line, end="")
    finally:
        timer.cancel()
    sys.exit(f"oidc-provider did not start (exit status {proc.wait()})")


def check_oidc_token(base: str, auth: str, alg: str) -> None:
    """Exit unless the endpoint issues a JWT signed with `alg` that verifies against its JWKS:
    a misconfigured provider would otherwise be benchmarked on its error path."""
    token = fetch_token(base + "/token", auth, OIDC_BODY)
    with urllib.request.urlopen(base + "/jwks", timeout=10) as response:
        keys = KeySet.import_key_set(json.load(response))
    try:
        decoded = jwt.decode(token, keys, algorithms=[alg])
    except (JoseError, ValueError) as error:
        sys.exit(f"oidc-provider {alg}: its token does not verify against its JWKS: {error!r}")
    header, claims = decoded.header, decoded.claims
    if header.get("alg") != alg or claims.get("aud") != OIDC_RESOURCE:
        sys.exit(f"oidc-provider {alg}: unexpected token {header} {claims}")
    if claims.get("scope") != OIDC_SCOPE:
        sys.exit(f"oidc-provider {alg}: token without the scope {OIDC_SCOPE!r}: {claims}")
    log(f"oidc-provider {alg}: token verified ({header.get('typ')}, kid {header.get('kid')})")


def bench_oidc(args) -> list[Result]:
    if not oidc_provider_installed():
        if args.only is not None and "oidc" in args.only:
            sys.exit("--only oidc needs node and npm")
        return []
    auth = basic(OIDC_CLIENT_ID, OIDC_SECRET)
    results = []
    for alg in ("RS256", "ES256"):
        for processes in (1, 2):
            with oidc_provider(alg, processes) as server:
                check_oidc_token(server[1], auth, alg)
                name = f"oidc-provider {alg}, {processes} process" + ("es" if processes > 1 else "")
                url = server[1] + "/token"
                results.append(measure(name, server, url, args, auth, OIDC_BODY))
    return results


def signature_cost_ms(algorithm: str, rounds: int = 300) -> float:
    """CPU ms of one signature with this machine's OpenSSL (best of three batches)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        sign = lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())  # noqa: E731
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        sign = lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))  # noqa: E731
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(rounds):
            sign(b"x" * 300)
        best = min(best, (time.process_time() - started) / rounds * 1000)
    return best


def signature_floor() -> None:
    """What the targets cost in signatures alone, on this machine's cores."""
    cores = os.cpu_count() or 1
    for algorithm in ("RS256", "ES256"):
        cost = signature_cost_ms(algorithm)
        needed = TARGETS[algorithm] * cost / 1000
        print(
            f"  {algorithm} signature: {cost:.3f} ms CPU here; {TARGETS[algorithm]:,} tokens/s "
            f"need {needed:.2f} of {cores} cores for signing alone"
        )


def machine_scale(by_name: dict[str, Result]) -> None:
    """This machine's speed against the figures the issue's targets were set beside."""
    for name, reference in REFERENCE_RATES.items():
        r = by_name.get(name)
        if r is not None and r.rate:
            print(
                f"  {name}: {r.rate:,.0f}/s here, ~{reference:,}/s on the issue's reference "
                f"machine ({r.rate / reference:.2f}x)"
            )


def print_table(results: list[Result]) -> None:
    print()
    print(
        f"{'endpoint':34} {'requests':>8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'app CPU ms/req':>14} {'PG+Redis CPU ms/req':>19}"
    )
    for r in results:
        print(
            f"{r.name:34} {r.requests:8,d} {r.rate:8,.0f} {r.p50_ms:7.1f} {r.p99_ms:7.1f} "
            f"{r.errors:6d} {r.cpu_ms_per_request:14.3f} {r.services_cpu_ms_per_request:19.3f}"
        )


def dot_ratios(by_name: dict[str, Result]) -> None:
    for dot in ("DOT token, cheap md5 hasher", "DOT token, default PBKDF2 hasher"):
        for ours in ("Keyward token RS256", "Keyward token ES256"):
            if dot in by_name and ours in by_name and by_name[dot].rate:
                print(f"{ours} / {dot}: {by_name[ours].rate / by_name[dot].rate:,.1f}x")


def oidc_best(results: list[Result], alg: str) -> Result | None:
    """oidc-provider's configuration with the most tokens/s for `alg`, among error-free rows."""
    rows = [r for r in results if r.name.startswith(f"oidc-provider {alg},") and not r.errors]
    return max(rows, key=lambda r: r.rate, default=None)


def peer_ratios(results: list[Result], by_name: dict[str, Result]) -> dict[str, float]:
    """Keyward against oidc-provider's best configuration per algorithm; the req/s ratios."""
    for r in results:
        if r.name.startswith("oidc-provider") and r.errors:
            print(f"{r.name}: {r.errors} errors ({r.non_2xx} non-2xx), not used as a baseline")
    ratios = {}
    for alg in ("RS256", "ES256"):
        ours, best = by_name.get(f"Keyward token {alg}"), oidc_best(results, alg)
        if ours is None or best is None or not (best.rate and best.cpu_ms_per_request):
            continue
        ratios[alg] = ours.rate / best.rate
        cpu = ours.cpu_ms_per_request / best.cpu_ms_per_request
        # oidc-provider keeps everything in memory; Keyward also spends PG and Redis CPU.
        cpu_all = (ours.cpu_ms_per_request + ours.services_cpu_ms_per_request) / (
            best.cpu_ms_per_request
        )
        print(
            f"{ours.name} / {best.name} (its best {alg}): {ratios[alg]:.2f}x req/s, "
            f"{cpu:.2f}x CPU per token ({cpu_all:.2f}x counting Keyward's PG+Redis CPU)"
        )
    return ratios


def floor_ratios(results: list[Result], by_name: dict[str, Result]) -> None:
    """Keyward against the floor (its framework and bookkeeping), the floor against
    oidc-provider's best (what Python and the server cost)."""
    for alg in ("RS256", "ES256"):
        floor = by_name.get(f"floor {alg}")
        if floor is None or not floor.rate:
            continue
        ours, best = by_name.get(f"Keyward token {alg}"), oidc_best(results, alg)
        if ours is not None:
            print(
                f"Keyward token {alg} / floor {alg}: {ours.rate / floor.rate:.2f}x req/s, "
                f"{ours.cpu_ms_per_request / floor.cpu_ms_per_request:.2f}x CPU per token"
            )
        if best is not None and best.rate:
            print(
                f"floor {alg} / {best.name} (its best {alg}): {floor.rate / best.rate:.2f}x "
                f"req/s, {floor.cpu_ms_per_request / best.cpu_ms_per_request:.2f}x CPU per token"
            )


def keyward_targets(by_name: dict[str, Result]) -> None:
    for key, target in TARGETS.items():
        name = "Keyward introspect" if key == "introspect" else f"Keyward token {key}"
        r = by_name.get(name)
        if r is None:
            continue
        checks = [
            (r.rate >= target, f"{r.rate:,.0f}/s >= {target:,}/s"),
            (r.p99_ms <= 25, f"p99 {r.p99_ms:.1f} ms <= 25 ms"),
            (r.errors == 0, f"{r.errors} errors"),
        ]
        if key != "introspect":
            checks.append(
                (r.cpu_ms_per_request <= 1.0, f"CPU {r.cpu_ms_per_request:.3f} ms/token <= 1 ms")
            )
        for ok, text in checks:
            print(f"  {'MET ' if ok else 'MISS'} {name}: {text}")


def peer_targets(ratios: dict[str, float]) -> None:
    for alg, target in PEER_TARGETS.items():
        if alg in ratios:
            ok = ratios[alg] >= target
            print(
                f"  {'MET ' if ok else 'MISS'} Keyward token {alg}: {ratios[alg]:.2f}x "
                f"oidc-provider's best {alg} >= {target:.2f}x"
            )


def pooled(rounds: list[list[Result]]) -> list[Result]:
    """Each row's rounds as one measurement: requests and seconds added up, CPU per request
    weighted by requests, the worst p50 and p99. Rows in the first round's order."""
    by_name: dict[str, list[Result]] = {}
    for results in rounds:
        for result in results:
            by_name.setdefault(result.name, []).append(result)
    rows = []
    for name, measured in by_name.items():
        requests = sum(r.requests for r in measured)

        def weighted(field: str, measured=measured, requests=requests) -> float:
            return sum(getattr(r, field) * r.requests for r in measured) / max(requests, 1)

        rows.append(
            Result(
                name=name,
                requests=requests,
                seconds=sum(r.seconds for r in measured),
                p50_ms=max(r.p50_ms for r in measured),
                p99_ms=max(r.p99_ms for r in measured),
                errors=sum(r.errors for r in measured),
                non_2xx=sum(r.non_2xx for r in measured),
                cpu_ms_per_request=weighted("cpu_ms_per_request"),
                services_cpu_ms_per_request=weighted("services_cpu_ms_per_request"),
            )
        )
    return rows


def round_ratios(rounds: list[list[Result]]) -> None:
    """Keyward's req/s against oidc-provider's best, round by round: the spread behind the
    pooled ratios above."""
    print()
    print("Round by round, Keyward / oidc-provider's best (req/s):")
    for number, results in enumerate(rounds, start=1):
        by_name = {r.name: r for r in results}
        parts = []
        for alg in ("RS256", "ES256"):
            ours, best = by_name.get(f"Keyward token {alg}"), oidc_best(results, alg)
            if ours is not None and best is not None and best.rate:
                parts.append(f"{alg} {ours.rate / best.rate:.2f}x")
        print(f"  round {number}: {', '.join(parts) or 'no pair measured'}")


def report(results: list[Result]) -> None:
    print_table(results)
    by_name = {r.name: r for r in results}
    print()
    dot_ratios(by_name)
    ratios = peer_ratios(results, by_name)
    floor_ratios(results, by_name)
    print()
    machine_scale(by_name)
    signature_floor()
    print()
    keyward_targets(by_name)
    peer_targets(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=20, help="seconds measured per endpoint")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="server processes (default: bin/serve's, and cores + 1 for gunicorn)",
    )
    parser.add_argument(
        "--dot-slow-duration",
        type=int,
        default=10,
        help="seconds for DOT with its default (slow) hasher",
    )
    parser.add_argument(
        "--only",
        type=lambda value: set(value.split(",")),
        help="run only these, comma-separated: keyward, floor, oidc, dot (e.g. keyward,oidc)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds, each in the reverse order of the one before (default 2: A B, then B A)",
    )
    parser.add_argument(
        "--compare-sync",
        action="store_true",
        help="also measure Keyward's token endpoint under sync workers (WSGI)",
    )
    args = parser.parse_args()
    if args.only and args.only - {"keyward", "floor", "oidc", "dot"}:
        parser.error("--only takes keyward, floor, oidc and dot")
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    # The floor and oidc-provider right after Keyward: compared closest in time on a shared
    # machine.
    benches = (
        ("keyward", bench_keyward),
        ("floor", bench_floor),
        ("oidc", bench_oidc),
        ("dot", bench_dot),
    )
    selected = [(name, bench) for name, bench in benches if args.only is None or name in args.only]
    rounds = []
    for number in range(max(1, args.rounds)):
        # This machine's speed drifts within a run: in one order, whatever runs first meets
        # a different machine from whatever runs last. Reversing every other round gives
        # each server both positions (A B, B A).
        order = selected if number % 2 == 0 else selected[::-1]
        log(f"round {number + 1} of {args.rounds}: {', '.join(name for name, _ in order)}")
        rounds.append([result for _name, bench in order for result in bench(args)])
    results = pooled(rounds)
    report(results)
    if len(rounds) > 1:
        round_ratios(rounds)


if __name__ == "__main__":
    main()
