"""Soak: Keyward as deployed, held at 80 % of its measured peak for ten minutes.

Run with `bin/bench-soak` (see bench/README.md). Not a test: it measures.

1. Start Keyward like `bin/bench` does (bin/serve on PostgreSQL and Redis).
2. Peak: the same mix (tokens, one introspection in four) unpaced for --peak-seconds.
3. Soak: one wrk run per minute, each connection pausing between requests so that the
   mix runs at --load of the peak; the pause is corrected each minute from the latency
   just seen, since wrk's pause comes on top of the answer's own time.
4. Per minute: the rate held, p50, p99, errors and the server's memory (RSS of every
   process of bin/serve); at the end the memory at the start and the end beside the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import redis

from bench.run_token_bench import (
    ACTIVATE_KEY,
    KEYWARD_ENV,
    REDIS_URL,
    ROOT,
    SEED_KEYWARD,
    _children,
    basic,
    fetch_token,
    keyward_server,
    log,
    manage,
    recreate_database,
    seed,
)

CONNECTIONS = 16


def soak_wrk(base: str, seconds: int, env: dict, delay_ms: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "wrk_soak.lua"),
            base,
        ],
        env=os.environ | env | {"BENCH_DELAY_MS": str(delay_ms)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    stats = json.loads(line[len("BENCH_JSON ") :])
    stats["rate"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["errors"] = stats["socket_errors"] + stats["non_2xx"]
    return stats


def server_rss_mb(root_pid: int) -> float:
    """Resident memory of the server process and all its descendants."""
    pids, total_kb = [str(root_pid)], 0
    while pids:
        pid = pids.pop()
        pids += _children(int(pid))
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def pause_for(target_rate: float, mean_latency_ms: float) -> int:
    """Per-connection pause (ms) that brings CONNECTIONS closed loops to `target_rate`."""
    cycle_ms = CONNECTIONS / target_rate * 1000
    return max(0, round(cycle_ms - mean_latency_ms))


def keyward_ready(algorithm: str) -> tuple[dict, dict]:
    env = KEYWARD_ENV | {"DATABASE_URL": recreate_database("keyward_soak")}
    redis.Redis.from_url(REDIS_URL).flushdb()
    log("Keyward: migrating and seeding")
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    manage(env, "shell", "-c", ACTIVATE_KEY.format(alg=algorithm))
    return env, seed(env, SEED_KEYWARD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--load", type=float, default=0.8, help="share of the peak to hold")
    parser.add_argument("--peak-seconds", type=int, default=20)
    parser.add_argument("--algorithm", default="ES256", choices=["ES256", "RS256", "EdDSA"])
    args = parser.parse_args()
    env, creds = keyward_ready(args.algorithm)
    auth = basic(creds["client_id"], creds["secret"])
    with keyward_server(env, 0) as (proc, base):
        token = fetch_token(base + "/token-srv/token", auth)
        mix = {
            "BENCH_AUTH": auth,
            "BENCH_CHECKER_AUTH": basic(creds["checker_id"], creds["checker_secret"]),
            "BENCH_TOKEN": token,
        }
        soak_wrk(base, 5, mix, 0)  # warm-up
        peak = soak_wrk(base, args.peak_seconds, mix, 0)
        target = peak["rate"] * args.load
        peak_p99 = peak["p99_us"] / 1000
        log(f"peak {peak['rate']:,.0f}/s (p99 {peak_p99:.1f} ms); holding {target:,.0f}/s")
        rss_start = server_rss_mb(proc.pid)
        minutes, delay = [], pause_for(target, peak["mean_us"] / 1000)
        for minute in range(1, args.minutes + 1):
            stats = soak_wrk(base, 60, mix, delay)
            stats["rss_mb"] = server_rss_mb(proc.pid)
            minutes.append(stats)
            log(
                f"minute {minute:2d}: {stats['rate']:,.0f}/s p50 {stats['p50_us'] / 1000:.1f} ms "
                f"p99 {stats['p99_us'] / 1000:.1f} ms errors {stats['errors']} "
                f"rss {stats['rss_mb']:.0f} MB"
            )
            delay = pause_for(target, stats["mean_us"] / 1000)
    report(peak, target, rss_start, minutes)


def report(peak: dict, target: float, rss_start: float, minutes: list[dict]) -> None:
    errors = sum(m["errors"] for m in minutes)
    p99s = [m["p99_us"] / 1000 for m in minutes]
    rss_end = minutes[-1]["rss_mb"]
    held = sum(m["requests"] for m in minutes) / sum(m["duration_us"] / 1e6 for m in minutes)
    print()
    print(
        f"peak (same run): {peak['rate']:,.0f}/s; target {target:,.0f}/s; held {held:,.0f}/s "
        f"({held / peak['rate']:.2f}x the peak)"
    )
    print(f"errors: {errors} (goal 0)  {'MET' if errors == 0 else 'MISS'}")
    print(
        f"p99 per minute: {', '.join(f'{p:.1f}' for p in p99s)} ms "
        f"(peak run: {peak['p99_us'] / 1000:.1f} ms)"
    )
    growth = (rss_end - rss_start) / rss_start if rss_start else 0.0
    flat = "MET" if growth < 0.10 else "MISS"
    print(
        f"server memory: {rss_start:.0f} MB at the start, {rss_end:.0f} MB at the end "
        f"({growth:+.1%}; goal flat, under +10 %)  {flat}"
    )


if __name__ == "__main__":
    main()
