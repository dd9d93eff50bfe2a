"""Fleet-wide AWS rate limits: token buckets in the real Redis, calls to the real moto server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from domains.integrations import aws, ratelimit
from domains.integrations.errors import IntegrationError
from vedomains_site.observability import aws_metrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent

# One process: call ListCertificates N times through the app's client, print each call's
# wall-clock end (one clock for all processes on this machine).
_CALLER = """
import json, sys, time
import django
django.setup()
from domains.integrations import aws
acm = aws.client("acm")
ends = []
for _ in range(int(sys.argv[1])):
    acm.list_certificates()
    ends.append(time.time())
print(json.dumps(ends))
"""


@pytest.fixture
def limited(settings: Any, aws_stack: Any, clean_redis: str) -> Any:
    settings.VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL = clean_redis
    settings.VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS = 30.0
    ratelimit._limiters.clear()
    yield settings
    ratelimit._limiters.clear()


def _max_in_window(ends: list[float], window: float) -> int:
    ends = sorted(ends)
    best = start = 0
    for end_index, end in enumerate(ends):
        while ends[start] < end - window:
            start += 1
        best = max(best, end_index - start + 1)
    return best


def test_four_processes_share_one_bucket_and_never_exceed_it(limited: Any,
                                                             moto_server: Any) -> None:
    rate = 5
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "vedomains_site.settings",
        "DJANGO_DEBUG": "true",
        "VEDOMAINS_AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "VEDOMAINS_AWS_RATE_LIMITS": json.dumps({"acm.ListCertificates": rate}),
        "VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL": limited.VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL,
        "VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS": "60",
    }
    procs = [
        subprocess.Popen([sys.executable, "-c", _CALLER, "6"], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    ends: list[float] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        ends.extend(json.loads(out))
    assert len(ends) == 24
    # A bucket of `rate` tokens refilled at `rate`/s admits at most burst + rate * t calls
    # in any t seconds, whichever process makes them; a call's end is measured after its
    # grant, so a loaded machine may bunch up to one more burst. Unlimited, all 24 land
    # within a fraction of a second.
    for window in (1.0, 2.0):
        assert _max_in_window(ends, window) <= 2 * rate + rate * window
    # 24 calls at 5/s with a burst of 5 cannot finish in under (24 - 5) / 5 s.
    assert max(ends) - min(ends) >= (24 - rate) / rate - 0.5


def test_a_call_that_cannot_get_capacity_in_time_is_transient(limited: Any) -> None:
    limited.VEDOMAINS_AWS_RATE_LIMITS = {"acm.ListCertificates": 0.2}
    limited.VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS = 0.5
    ratelimit._limiters.clear()
    acm = aws.client("acm")
    acm.list_certificates()  # the bucket's one token
    with pytest.raises(IntegrationError) as info:
        acm.list_certificates()
    assert (info.value.permanent, info.value.code) == (False, "RateLimited")


def test_a_service_wide_bucket_covers_operations_without_their_own(limited: Any) -> None:
    limited.VEDOMAINS_AWS_RATE_LIMITS = {"acm.*": 0.2}
    limited.VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS = 0.5
    ratelimit._limiters.clear()
    acm = aws.client("acm")
    acm.list_certificates()
    with pytest.raises(IntegrationError):
        acm.list_certificates()
    # DynamoDB has no entry: never limited.
    dynamodb = aws.client("dynamodb")
    for _ in range(5):
        dynamodb.list_tables()


def test_with_redis_unreachable_calls_go_through(limited: Any) -> None:
    limited.VEDOMAINS_AWS_RATE_LIMITS = {"acm.ListCertificates": 0.2}
    limited.VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"
    ratelimit._limiters.clear()
    acm = aws.client("acm")
    for _ in range(3):
        acm.list_certificates()


@pytest.mark.parametrize("code", sorted(aws_metrics.THROTTLE_CODES))
def test_stubbed_throttling_answers_are_transient(code: str) -> None:
    acm = boto3.client("acm", region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x")
    with Stubber(acm) as stub:
        stub.add_client_error("describe_certificate", service_error_code=code,
                              http_status_code=400)
        with pytest.raises(Exception) as info:
            acm.describe_certificate(CertificateArn="arn:aws:acm:us-east-1:1:certificate/x")
    error = aws.classify(info.value, "describe")
    assert (error.permanent, error.code) == (False, code)


@pytest.mark.parametrize("value", ['{"acm.*": "fast"}', '{"acm.*": -1}', '[4]', '{"acm": 4}',
                                   "{not json"])
def test_a_bad_rate_limit_setting_stops_start_up_with_its_name(tmp_path: Path,
                                                               value: str) -> None:
    """Broken JSON stops the settings themselves; a readable but wrong value stops
    `manage.py check` (E023), the deploy's release step."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEDOMAINS_")}
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
         "from django.core.management import call_command; call_command('check')"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**env, "PYTHONPATH": str(ROOT), "DJANGO_DEBUG": "true",
             "DJANGO_SETTINGS_MODULE": "vedomains_site.settings",
             "VEDOMAINS_AWS_RATE_LIMITS": value},
    )
    assert out.returncode != 0
    expected = ("ImproperlyConfigured: VEDOMAINS_AWS_RATE_LIMITS" if value.startswith("{not")
                else "(vedomains.E023) VEDOMAINS_AWS_RATE_LIMITS")
    assert expected in out.stderr, out.stderr[-500:]
