"""AWS calls, errors and throttles by operation, from botocore's own event system.

`instrument(client)` registers three handlers on a client built by
`domains.integrations.aws.client`; no call site changes:

- `after-call.*` fires once per API call with its final answer (after botocore's retries):
  one call, and one error (labelled with the AWS error code) when the status is >= 300;
- `after-call-error.*` fires when no answer came at all: one call and one error, with code
  `network` (connection refused, timeouts) or the exception's class (for example the
  fleet-wide rate limiter's refusal, raised before anything is sent);
- `needs-retry.*` fires after every attempt, so throttles are counted per attempt, including
  the ones botocore retried successfully: an operator sees the account brushing against a
  rate limit before any call fails.

https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html
"""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from vedomains_site.observability import counters

_NETWORK: Final = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
                   ConnectionClosedError)

# Codes AWS uses for "slow down". domains.integrations.aws.TRANSIENT_CODES includes them all
# (a throttle is always retried, never a verdict on the domain); its server faults are
# errors here, not throttles.
THROTTLE_CODES: Final = frozenset({
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
})

CALLS: Final = "vedomains_aws_calls_total"
ERRORS: Final = "vedomains_aws_errors_total"
THROTTLES: Final = "vedomains_aws_throttles_total"


def _service(model: Any) -> str:
    return str(model.service_model.service_id.hyphenize())


def _after_call(*, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
    labels = {"service": _service(model), "operation": model.name}
    items = [(CALLS, labels)]
    if http_response is not None and http_response.status_code >= 300:
        code = str((parsed or {}).get("Error", {}).get("Code") or http_response.status_code)
        items.append((ERRORS, {**labels, "code": code}))
    counters.incr_many(items)


def _after_call_error(*, exception: BaseException, context: Any = None, **kwargs: Any) -> None:
    # after-call-error carries no model; the event name does: after-call-error.<svc>.<op>.
    event = str(kwargs.get("event_name", ""))
    _, _, rest = event.partition(".")
    service, _, operation = rest.partition(".")
    labels = {"service": service, "operation": operation}
    code = "network" if isinstance(exception, _NETWORK) else type(exception).__name__
    counters.incr_many([(CALLS, labels), (ERRORS, {**labels, "code": code})])


def _needs_retry(*, response: Any = None, operation: Any = None, **_: Any) -> None:
    if response is None or operation is None:
        return None
    _, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code", "")
    if code in THROTTLE_CODES:
        counters.incr(THROTTLES, {"service": _service(operation), "operation": operation.name})
    return None  # never influences botocore's own retry decision


def instrument(client: Any) -> Any:
    events = client.meta.events
    # unique_id: building the same client twice (tests reset the cache) never double-counts.
    events.register("after-call", _after_call, unique_id="vedomains-metrics-after-call")
    events.register("after-call-error", _after_call_error,
                    unique_id="vedomains-metrics-after-call-error")
    events.register("needs-retry", _needs_retry, unique_id="vedomains-metrics-needs-retry")
    return client
