"""How fast /.well-known/jwks.json and /healthz/web answer while the console is busy logging
people in (each login runs Django's PBKDF2 password hash on a web thread).

    python bench/busy_console.py http://127.0.0.1:8000 USERNAME PASSWORD [--seconds 20]

Four threads log in over and over while the main thread times JWKS and /healthz/web (the
load-balancer check) in turn, one request at a time; prints p50/p95 of each, with no logins
and then with them.
Talks only to the given local server and stops by itself.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import requests

LOGINS = 4


def login_loop(base: str, username: str, password: str, stop: threading.Event, count: list):
    """Logs in until stopped; `count` gets each answer's status (302 in, 503 busy)."""
    with requests.Session() as session:
        while not stop.is_set():
            session.cookies.clear()
            session.get(base + "/login/", timeout=30)
            token = session.cookies.get("csrftoken")
            answer = session.post(
                base + "/login/",
                {"username": username, "password": password, "csrfmiddlewaretoken": token},
                headers={"Referer": base + "/login/"},
                allow_redirects=False,
                timeout=30,
            )
            assert answer.status_code in (302, 503), answer.status_code
            count.append(answer.status_code)
            if answer.status_code == 503:  # busy: a person would try again a moment later
                stop.wait(float(answer.headers.get("Retry-After", "1")))


def timed(session: requests.Session, url: str) -> float:
    start = time.perf_counter()
    answer = session.get(url, timeout=30)
    assert answer.status_code == 200, (url, answer.status_code)
    return (time.perf_counter() - start) * 1000


def sample(base: str, seconds: float) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"/.well-known/jwks.json": [], "/healthz/web": []}
    deadline = time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < deadline:
            for path, series in times.items():
                series.append(timed(session, base + path))
            time.sleep(0.02)
    return times


def busy_sample(base: str, username: str, password: str, seconds: float, logins: int = LOGINS):
    """(latencies while `logins` threads log in, the status of each login answer)."""
    stop, count = threading.Event(), []
    threads = [
        threading.Thread(target=login_loop, args=(base, username, password, stop, count))
        for _ in range(logins)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)  # let every login thread get going
        return sample(base, seconds), count
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


def p(series: list[float], q: float) -> float:
    return statistics.quantiles(series, n=100)[q - 1] if len(series) > 1 else series[0]


def report(label: str, times: dict[str, list[float]]) -> None:
    for path, series in times.items():
        print(
            f"{label:>12} {path:<26} n={len(series):<4} p50={p(series, 50):7.1f} ms"
            f"  p95={p(series, 95):7.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("username")
    parser.add_argument("password")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    base = args.base.rstrip("/")
    report("idle", sample(base, min(args.seconds, 5)))
    times, answers = busy_sample(base, args.username, args.password, args.seconds)
    report(f"{LOGINS} logging in", times)
    print(f"logins: {answers.count(302)} in, {answers.count(503)} told to retry (busy)")


if __name__ == "__main__":
    main()
