"""Stop at once, with a way out, when the test services are not reachable."""

from __future__ import annotations

import os
import sys

import psycopg
import redis

HOW_TO_START = "Start them with: docker compose up -d db redis"


def main() -> int:
    database_url = os.environ["DATABASE_URL"]
    redis_url = os.environ["REDIS_URL"]
    problems = []
    try:
        # Connect to the server's maintenance database: the test database may not exist yet.
        conninfo = psycopg.conninfo.conninfo_to_dict(database_url)
        conninfo["dbname"] = "postgres"
        psycopg.connect(**conninfo, connect_timeout=3).close()
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL is not reachable at {database_url}: {exc}".strip())
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis is not reachable at {redis_url}: {exc}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(HOW_TO_START + " (or set DATABASE_URL / REDIS_URL)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
