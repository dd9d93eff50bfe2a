"""Production operations: what the operator endpoints and hooks cost.

    python bench/ops.py [--domains 100000] [--quick]

- /metrics scrape time with a small and a large domains table (the scrape reads the
  database at scrape time: it must stay well under a scrape interval);
- the cost the metrics hooks add to each AWS call (one pipelined HINCRBY round trip);
- /health/ready latency (database, broker and a Redis cache, in parallel).

Uses a throwaway database (bench.common.setup_database) and Redis database 15.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCH_BROKER_URL, percentile, prepare_environment


def _times(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    big = 10_000 if args.quick else args.domains

    prepare_environment()
    os.environ.setdefault("VEDOMAINS_BENCH_DB_NAME", "vedomains_bench_ops")
    from bench.common import setup_database

    database = setup_database()
    try:
        from django.conf import settings
        from django.test import Client

        from bench.api import add_big_workspace_domains
        from domains.models import Workspace
        from vedomains_site.observability import counters

        settings.CELERY_BROKER_URL = BENCH_BROKER_URL
        settings.VEDOMAINS_METRICS_REDIS_URL = BENCH_BROKER_URL
        settings.VEDOMAINS_METRICS_TOKEN = "bench-token-0123456789"
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                       "LOCATION": BENCH_BROKER_URL}}
        settings.ALLOWED_HOSTS = ["*"]
        counters.reset_state()
        client = Client()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {settings.VEDOMAINS_METRICS_TOKEN}"}

        def scrape() -> None:
            assert client.get("/metrics", **auth).status_code == 200

        workspace = Workspace.objects.create(slug="big", name="big", plan="enterprise")
        add_big_workspace_domains(workspace, 0, 1_000)
        scrape()
        small = _times(scrape, 20)
        add_big_workspace_domains(workspace, 1_000, big)
        scrape()
        large = _times(scrape, 20)
        print(f"/metrics scrape, 1,000 domains: p50 {statistics.median(small) * 1000:.0f} ms, "
              f"p99 {percentile(small, 99) * 1000:.0f} ms")
        print(f"/metrics scrape, {big:,} domains: p50 {statistics.median(large) * 1000:.0f} ms, "
              f"p99 {percentile(large, 99) * 1000:.0f} ms")

        labels = {"service": "acm", "operation": "DescribeCertificate"}
        hook = _times(lambda: counters.incr_many([("vedomains_aws_calls_total", labels)]), 2000)
        print(f"metrics hook per AWS call (one pipelined HINCRBY): p50 "
              f"{statistics.median(hook) * 1e6:.0f} µs, p99 {percentile(hook, 99) * 1e6:.0f} µs")

        def ready() -> None:
            assert client.get("/health/ready").status_code == 200

        probe = _times(ready, 50)
        print(f"/health/ready (database, broker, Redis cache): "
              f"p50 {statistics.median(probe) * 1000:.1f} ms, "
              f"p99 {percentile(probe, 99) * 1000:.1f} ms")
    finally:
        database.teardown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
