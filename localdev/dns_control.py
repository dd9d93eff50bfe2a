"""Client for the local DNS server's HTTP control API (see `localdev.dns_server`).

    control = DNSControl("http://127.0.0.1:5380")
    control.set("_acme.example.com", "TXT", "token")
    control.fault("servfail", name="example.com")

Stdlib only, explicit timeouts, and one exception type whose message says what to do.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Final
from urllib.parse import urlencode

DEFAULT_CONTROL_URL: Final = "http://127.0.0.1:5380"


class DNSControlError(Exception):
    """The control API is unreachable or rejected the request.

    `status` is the HTTP status, or None when the server could not be reached.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DNSControl:
    def __init__(self, base_url: str = DEFAULT_CONTROL_URL, timeout: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health")

    def records(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/records")["records"])

    def set(self, name: str, rtype: str, value: str, ttl: int = 60, *,
            conflict: bool = False) -> list[dict[str, Any]]:
        """Replace every `rtype` record at `name`; returns the resulting RRset.

        `conflict=True` allows a CNAME beside other data, as a broken provider does."""
        body = {"name": name, "type": rtype, "value": value, "ttl": ttl}
        if conflict:
            body["conflict"] = True
        return list(self._request("PUT", "/records", body)["records"])

    def add(self, name: str, rtype: str, value: str, ttl: int = 60, *,
            conflict: bool = False) -> list[dict[str, Any]]:
        """Add one record to the `rtype` RRset at `name`; returns the resulting RRset.

        `conflict=True`: as in set(), and a second CNAME joins the first."""
        body = {"name": name, "type": rtype, "value": value, "ttl": ttl}
        if conflict:
            body["conflict"] = True
        return list(self._request("POST", "/records", body)["records"])

    def queries(self) -> list[dict[str, Any]]:
        """The queries the server answered since the last reset_queries(), oldest first."""
        return list(self._request("GET", "/queries")["queries"])

    def reset_queries(self) -> None:
        self._request("DELETE", "/queries")

    def delete(self, name: str, rtype: str | None = None) -> int:
        """Delete records at `name` (only `rtype` if given); returns how many."""
        query = {"name": name} | ({"type": rtype} if rtype is not None else {})
        return int(self._request("DELETE", "/records?" + urlencode(query))["deleted"])

    def clear(self) -> int:
        return int(self._request("DELETE", "/records/all")["deleted"])

    def fault(self, mode: str | None, name: str | None = None) -> dict[str, Any]:
        """Set ("timeout", "servfail", "refused") or clear (None) a fault, globally or
        for one name. Returns the current faults."""
        body: dict[str, Any] = {"mode": mode}
        if name is not None:
            body["name"] = name
        return dict(self._request("PUT", "/fault", body)["faults"])

    def faults(self) -> dict[str, Any]:
        return dict(self._request("GET", "/fault")["faults"])

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        url = self.base_url + path
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise DNSControlError(
                f"local DNS control API rejected {method} {path}: {exc.code} {_error_text(exc)}",
                status=exc.code,
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DNSControlError(
                f"local DNS control API is not reachable at {self.base_url} ({reason}); "
                "is the local DNS server running? Start it with "
                "`python -m localdev.dns_server --control-port <port>`."
            ) from None
        except json.JSONDecodeError:
            raise DNSControlError(
                f"{self.base_url} answered {method} {path} with something other than JSON; "
                "is it really the local DNS control API?"
            ) from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read())
        return str(payload.get("error", payload))
    except (ValueError, AttributeError, OSError):
        return exc.reason if isinstance(exc.reason, str) else ""
