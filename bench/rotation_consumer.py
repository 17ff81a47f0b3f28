"""A token consumer that follows secret rotations: it requests a token every --interval
seconds with the secret it reads from --secret-file *on every request*, so an operator
switches it to a new secret by writing that secret into the file.

It prints running counts of successes and failures per secret hint once a second and a
summary on Ctrl-C or after --duration; the exit status is 1 if any request failed. Standard
library only, so it runs against any Keyward (see bench/README.md):

    python bench/rotation_consumer.py --issuer http://127.0.0.1:8000 \\
        --client-id CLIENT_ID --secret-file /tmp/consumer.secret --duration 60
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SECRET_PREFIX = "kwsec_"


def secret_hint(secret: str) -> str:
    """The hint the dashboard shows for a secret (clients.secrets.secret_hint)."""
    if not secret:
        return "(empty file)"
    return (
        f"{SECRET_PREFIX}…{secret[-4:]}" if secret.startswith(SECRET_PREFIX) else f"…{secret[-4:]}"
    )


@dataclass
class Tally:
    """Successes and failures per secret hint, and why the failures failed."""

    ok: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, hint: str, reason: str | None) -> None:
        with self.lock:
            if reason is None:
                self.ok[hint] += 1
            else:
                self.failed[hint] += 1
                self.reasons[f"{hint} {reason}"] += 1

    def total_failures(self) -> int:
        with self.lock:
            return sum(self.failed.values())

    def lines(self) -> list[str]:
        with self.lock:
            hints = list(dict.fromkeys([*self.ok, *self.failed]))
            rows = [f"  {h}  ok={self.ok[h]:<6} failed={self.failed[h]}" for h in hints]
            rows += [f"    failure {reason}: {n}" for reason, n in self.reasons.items()]
            return rows

    def one_line(self) -> str:
        with self.lock:
            hints = list(dict.fromkeys([*self.ok, *self.failed]))
            return " | ".join(f"{h} ok={self.ok[h]} failed={self.failed[h]}" for h in hints)


class Consumer:
    """Requests tokens in a loop until `stop` is set; counts into `tally`."""

    def __init__(self, *, issuer: str, client_id: str, secret_file: Path, interval: float):
        self.url = issuer.rstrip("/") + "/token-srv/token"
        self.client_id = client_id
        self.secret_file = secret_file
        self.interval = interval
        self.tally = Tally()
        self.stop = threading.Event()

    def request_once(self) -> tuple[str, str | None]:
        """One token request with the file's current secret: (hint, None or failure reason)."""
        try:
            secret = self.secret_file.read_text().strip()
        except OSError as exc:
            return "(no file)", f"unreadable secret file: {exc.strerror}"
        basic = base64.b64encode(
            f"{urllib.parse.quote(self.client_id)}:{urllib.parse.quote(secret)}".encode()
        ).decode()
        request = urllib.request.Request(
            self.url,
            data=b"grant_type=client_credentials",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                token = json.load(response).get("access_token")
                return secret_hint(secret), None if token else "200 without access_token"
        except urllib.error.HTTPError as exc:
            return secret_hint(secret), f"HTTP {exc.code} {_error_code(exc)}"
        except (urllib.error.URLError, OSError) as exc:
            return secret_hint(secret), f"network: {getattr(exc, 'reason', exc)}"

    def run(self) -> None:
        # Fixed-rate schedule: a slow answer delays the next request, it does not pile up.
        next_at = time.monotonic()
        while not self.stop.is_set():
            hint, reason = self.request_once()
            self.tally.add(hint, reason)
            next_at = max(next_at + self.interval, time.monotonic())
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def _error_code(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read() or b"{}").get("error", "")
    except ValueError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--issuer", required=True, help="Keyward base URL, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--secret-file", required=True, type=Path, help="re-read on every request")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between requests")
    parser.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: Ctrl-C)"
    )
    args = parser.parse_args(argv)

    consumer = Consumer(
        issuer=args.issuer,
        client_id=args.client_id,
        secret_file=args.secret_file,
        interval=args.interval,
    )
    # Ctrl-C and `kill` both end with the summary (a shell's background job ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    worker = threading.Thread(target=consumer.run, daemon=True)
    started = time.monotonic()
    worker.start()
    elapsed = 0.0
    try:
        while worker.is_alive():
            time.sleep(1.0 if args.duration is None else min(1.0, args.duration - elapsed))
            elapsed = time.monotonic() - started
            print(f"t={elapsed:6.1f}s  {consumer.tally.one_line()}", flush=True)
            if args.duration is not None and elapsed >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    consumer.stop.set()
    worker.join()
    print(f"\nSummary after {time.monotonic() - started:.1f} s (per secret hint):")
    print("\n".join(consumer.tally.lines()) or "  no requests")
    return 1 if consumer.tally.total_failures() else 0


if __name__ == "__main__":
    sys.exit(main())
