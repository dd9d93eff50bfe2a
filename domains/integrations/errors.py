"""The one error every integration raises.

`permanent=True`: retrying cannot help (the customer's DNS is wrong, the alias belongs to
another AWS account, the request is invalid). `permanent=False`: timeouts, throttling,
SERVFAIL, network; retried with backoff and never taken as the customer's fault.
"""

from __future__ import annotations


class IntegrationError(Exception):
    def __init__(self, message: str, *, permanent: bool, code: str = "",
                 capacity: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        # A quota or capacity limit of OUR account (TooMany*, EntityLimitExceeded): a
        # platform alert and a retry, never the customer's failure.
        self.capacity = capacity

    def __str__(self) -> str:
        kind = "permanent" if self.permanent else "transient"
        return f"{self.message} ({kind}{', ' + self.code if self.code else ''})"


class TransientIntegrationError(IntegrationError):
    """A transient IntegrationError, as its own class: what Celery's `autoretry_for` retries.

    Celery chooses what to retry by exception class, and `permanent` is a flag; the tasks
    re-raise a transient error as this (domains.task_retries.transient_errors_retried).
    """

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message, permanent=False, code=code)
