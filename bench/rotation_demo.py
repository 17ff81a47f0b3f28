"""A whole zero-downtime secret rotation, driven black-box against a running Keyward.

1. A consumer (bench/rotation_consumer.py) requests a token every 50 ms with the secret in
   its secret file, in a thread, for --before seconds.
2. The admin rotates: `manage.py rotate_secret CLIENT_ID --grace 1h --json`.
3. After --switch-after seconds (default 0: at once) the consumer is switched: the new
   secret is written into its file, atomically.
4. After --overlap seconds the admin revokes the old secret: `manage.py revoke_secret`.
5. The consumer keeps running --after seconds; then the counts per secret hint are printed.
   Expect 0 failures. Finally the old secret is checked to be refused.

The manage.py commands run as subprocesses with this process's environment, so run it with
the same DATABASE_URL / KEYWARD_VAR_DIR / settings as the server. Without --secret the demo
first gives the client a fresh secret it knows (`rotate_secret --grace 0`, which ends the
client's other secrets at once): use a demo client, not one something else depends on.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rotation_consumer import Consumer, secret_hint

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str) -> str:
    """Run one manage.py command like an admin would; stdout, or exit with its message."""
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=os.environ)
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def rotate(client_id: str, grace: str) -> dict:
    return json.loads(manage("rotate_secret", client_id, "--grace", grace, "--json"))


def write_secret(path: Path, secret: str) -> None:
    # Write then rename: the consumer reads the file on every request and must never see
    # it half-written (an empty secret would count as a failure the rotation did not cause).
    partial = path.with_suffix(".partial")
    partial.write_text(secret + "\n")
    os.replace(partial, path)


def step(started: float, text: str) -> None:
    print(f"[{time.monotonic() - started:6.2f}s] {text}", flush=True)


def old_secret_refused(consumer: Consumer, secret_file: Path, old: str, seconds: float) -> float:
    """Seconds until a request with the old secret fails (-1 if it never did)."""
    probe = secret_file.with_name("old.secret")
    write_secret(probe, old)
    checker = Consumer(
        issuer=consumer.url.removesuffix("/token-srv/token"),
        client_id=consumer.client_id,
        secret_file=probe,
        interval=0,
    )
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        _hint, reason = checker.request_once()
        if reason is not None:
            print(f"  old secret now refused: {reason}")
            return time.monotonic() - began
        time.sleep(0.05)
    return -1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", default="http://127.0.0.1:8000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--secret", help="the client's current secret (default: make one)")
    parser.add_argument("--secret-id", help="its numeric id, for revoke_secret (with --secret)")
    parser.add_argument("--grace", default="1h", help="rotate_secret --grace (default 1h)")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--before", type=float, default=3.0, help="seconds before rotating")
    parser.add_argument(
        "--switch-after", type=float, default=0.0, help="seconds from rotating to switching"
    )
    parser.add_argument("--overlap", type=float, default=3.0, help="seconds before revoking")
    parser.add_argument("--after", type=float, default=3.0, help="seconds after revoking")
    args = parser.parse_args(argv)
    if bool(args.secret) != bool(args.secret_id):
        parser.error("--secret and --secret-id go together")

    if args.secret:
        old_secret, old_id = args.secret, args.secret_id
    else:
        fresh = rotate(args.client_id, "0")
        old_secret, old_id = fresh["client_secret"], str(fresh["secret_id"])
        print(f"Setup: gave the client a fresh secret {secret_hint(old_secret)} (id {old_id}).")

    with tempfile.TemporaryDirectory(prefix="keyward-rotation-") as tmp:
        secret_file = Path(tmp) / "consumer.secret"
        write_secret(secret_file, old_secret)
        consumer = Consumer(
            issuer=args.issuer,
            client_id=args.client_id,
            secret_file=secret_file,
            interval=args.interval,
        )
        worker = threading.Thread(target=consumer.run, daemon=True)
        started = time.monotonic()
        worker.start()
        step(started, f"consumer running with {secret_hint(old_secret)}")
        time.sleep(args.before)

        rotated = rotate(args.client_id, args.grace)
        new_secret = rotated["client_secret"]
        step(
            started,
            f"rotated (grace {args.grace}): new {secret_hint(new_secret)} "
            f"(id {rotated['secret_id']}), old valid until {rotated['old_secrets_expire_at']}",
        )
        # The token service reloads a client whose presented secret matches no cached one,
        # so the consumer may switch the moment the admin has the new secret.
        time.sleep(args.switch_after)
        write_secret(secret_file, new_secret)
        step(started, "consumer switched to the new secret (file rewritten)")
        time.sleep(args.overlap)

        step(started, manage("revoke_secret", args.client_id, old_id).strip())
        time.sleep(args.after)
        consumer.stop.set()
        worker.join()
        step(started, "consumer stopped")

        print("\nToken requests per secret hint:")
        print("\n".join(consumer.tally.lines()))
        failures = consumer.tally.total_failures()
        print(f"Failed requests: {failures}")
        refused_after = old_secret_refused(consumer, secret_file, old_secret, 2.0)
        if refused_after < 0:
            print("The old secret still gets tokens 2 s after its revocation!")
            return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
