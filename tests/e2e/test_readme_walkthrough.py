"""The README's walkthrough, replayed: its commands as written, against a running stack.

The stack starts as `./dev run` starts it, with `./dev run`'s own defaults for everything the
walkthrough promises (check intervals, deploy delay, edge caches); only its ports, database,
broker and var/ directory are its own. The commands are read from README.md's walkthrough
(each ```sh block), their URLs pointed at this stack's ports and `./dev manage` / `./dev
status` run as `python -m localdev.dev_manage`, and each is run with bash. The test then
checks each state and answer the README promises after that step. A README edit that adds,
drops or reorders a command fails here until the replay follows it.

DNS first (nothing in AWS before the CNAME, the deploying step visible with the local
deploy delay's default) is what the README describes; those promises are grouped below
under "DNS-first promises".
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis

from localdev.moto_server import aws_env
from localdev.stack import PORTS
from tests.e2e.test_end_to_end import (
    BROKER_URL_FROM_ENV,
    STOP_TIMEOUT,
    RunningStack,
    _alive,
    _free_port,
    admin_page,
    e2e_database,  # noqa: F401  (a fixture)
    started_stack,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HOST = "gallery.example.com"
# The README's promises, in seconds, with room for a loaded shared machine.
LIVE_WITHIN = 90.0
EDGE_FORGETS_WITHIN = 30 + 15  # "30 s at most" plus a check and the tombstone write

# (what the step is, a pattern its command must match), in the README's order.
STEPS = [
    ("run", r"^\./dev run$"),
    ("token", r"^TOKEN=<the API token from the banner>$"),
    ("register", r"^curl -s .*-d '\{\"hostname\": \"gallery\.example\.com\", "
                 r"\"workspace\": \"demo\"\}' http://127\.0\.0\.1:8000/api/domains/$"),
    ("show", r"^curl -s -H \"Authorization: Token \$TOKEN\" "
             r"http://127\.0\.0\.1:8000/api/domains/gallery\.example\.com/$"),
    ("edge_head", r"^curl -i -H 'Host: gallery\.example\.com' http://127\.0\.0\.1:8080/$"),
    ("cname", r"^\./dev manage local_dns set gallery\.example\.com CNAME domain\.ve\.ai$"),
    ("edge", r"^curl -s -H 'Host: gallery\.example\.com' "
             r"'http://127\.0\.0\.1:8080/\?format=json'$"),
    ("edge_spoofed", r"^curl -s -H 'Host: gallery\.example\.com' -H 'workspace-id: "
                     r"someone-else' 'http://127\.0\.0\.1:8080/\?format=json'$"),
    ("remove", r"^curl -s -X DELETE -H \"Authorization: Token \$TOKEN\" "
               r"http://127\.0\.0\.1:8000/api/domains/gallery\.example\.com/$"),
    ("status", r"^\./dev status$"),
]


def readme_commands() -> dict[str, str]:
    """The walkthrough's shell commands by step, checked against STEPS."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Walkthrough", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        joined = re.sub(r"\\\n\s*", "", block)
        commands += [line.strip() for line in joined.splitlines()
                     if line.strip() and not line.strip().startswith("#")]
    assert len(commands) == len(STEPS), commands
    for command, (name, pattern) in zip(commands, STEPS, strict=True):
        assert re.match(pattern, command), (name, command)
    return {name: command for command, (name, _) in zip(commands, STEPS, strict=True)}


@pytest.fixture
def readme_stack(tmp_path: Path, e2e_database: str) -> Iterator[RunningStack]:  # noqa: F811
    """`./dev run`'s stack with its defaults: only ports, database, broker and var/ moved."""
    taken: set[int] = set()
    broker_url = BROKER_URL_FROM_ENV or f"redis://127.0.0.1:{_free_port(taken)}/0"
    if BROKER_URL_FROM_ENV:
        redis.Redis.from_url(broker_url, socket_connect_timeout=2).flushdb()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VEDOMAINS_", "AWS_", "CELERY_", "DATABASE_URL"))}
    env.update({var: str(_free_port(taken)) for _, var, _, _ in PORTS})
    env.update({"DATABASE_URL": e2e_database, "CELERY_BROKER_URL": broker_url,
                "DJANGO_DEBUG": "true"})
    yield from started_stack(env, tmp_path, broker_url=broker_url, running_env={
        **env, "VEDOMAINS_LOCAL_VAR_DIR": str(tmp_path / "var")})


class Shell:
    """The second terminal: runs a README command with this stack's ports and token."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        urls = stack.urls
        self.web = urls["admin"].removesuffix("/admin/")
        self.edge = urls["edge"].rstrip("/")
        self.env = {**stack.env, "TOKEN": stack.summary["demo"]["token"]}

    def command(self, readme: str) -> str:
        manage = f"{sys.executable} -m localdev.dev_manage"
        return (readme.replace("http://127.0.0.1:8000", self.web)
                .replace("http://127.0.0.1:8080", self.edge)
                .replace("./dev manage", manage)
                .replace("./dev status", f"{manage} --status"))

    def run(self, readme: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", self.command(readme)], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)

    def json(self, readme: str) -> Any:
        done = self.run(readme)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def test_the_readme_walkthrough_does_what_it_says(readme_stack: RunningStack) -> None:
    steps = readme_commands()
    shell = Shell(readme_stack)
    moto = readme_stack.urls["moto"]
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=moto,
                              aws_access_key_id=aws_env(moto)["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=aws_env(moto)["AWS_SECRET_ACCESS_KEY"])
    dns_first_failures: list[str] = []

    def dns_first(ok: bool, promise: str) -> None:
        if not ok:
            dns_first_failures.append(promise)

    # 1. Register: one record to create, the routing CNAME.
    registered = shell.json(steps["register"])
    assert registered["status"] == "pending_validation", registered
    assert registered["dns_records"] == [
        {"purpose": "routing", "type": "CNAME", "name": HOST, "value": "domain.ve.ai"}]

    # 2. Checks run; without the CNAME they say so, and the edge answers 404.
    checked = wait_for(lambda: (d := shell.json(steps["show"])).get("checks", {}).get("dns")
                       and d, 30, "a first check of the domain", step=0.5)
    assert checked["status"] == "pending_validation" and checked["checks"]["dns"]["ok"] is False
    edge_head = shell.run(steps["edge_head"])
    assert edge_head.stdout.startswith("HTTP/1.1 404"), edge_head.stdout[:300]
    assert "not connected to a workspace" in edge_head.stdout

    # DNS-first promises (before the CNAME): no certificate, no tenant in AWS.
    dns_first(checked["certificate_status"] == "",
              f"no certificate before the CNAME (got {checked['certificate_status']!r})")
    tenants = cloudfront.list_distribution_tenants().get("DistributionTenantList", [])
    dns_first(not tenants, f"no tenant before the CNAME (found {len(tenants)})")

    # 3. The CNAME.
    cname = shell.run(steps["cname"])
    assert cname.returncode == 0, cname.stderr

    # 4. pending_validation -> deploying (certificate issued) -> active.
    seen: list[str] = []

    def live() -> dict[str, Any] | None:
        body = shell.json(steps["show"])
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] == "deploying":
            assert body["certificate_status"] == "issued", body
        return body if body["status"] == "active" else None

    wait_for(live, LIVE_WITHIN, "the domain to go live", step=0.25)
    assert seen[0] == "pending_validation" and seen[-1] == "active", seen
    assert set(seen) <= {"pending_validation", "deploying", "active"}, seen
    # DNS-first promise: the deploying step is visible with the local default deploy delay.
    dns_first("deploying" in seen, f"a visible deploying step (saw {seen})")

    changelist = admin_page(readme_stack, f"/domains/customdomain/?q={HOST}")
    found = re.search(r'href="(/admin/domains/customdomain/\d+/change/[^"]*)"', changelist)
    assert found, changelist[-2000:]
    page = admin_page(readme_stack, found.group(1).removeprefix("/admin"))
    assert ">Live</span>" in page and "Registered" in page
    assert "Deploying \u2192 Live" in page or "Setting up \u2192 Live" in page
    assert '<span class="vd-found">found</span>' in page
    dns_first("Setting up \u2192 Deploying" in page and "Deploying \u2192 Live" in page,
              "the audit trail shows Setting up -> Deploying -> Live")

    # 5. The edge routes it to the demo workspace, whatever workspace-id the viewer sends.
    def routed() -> dict[str, Any] | None:
        done = shell.run(steps["edge"])
        try:
            body = json.loads(done.stdout)
        except ValueError:
            return None
        return body if isinstance(body, dict) and "workspace" in body else None

    # Up to 5 s of a cached 404 from before, plus a check's time to publish the mapping.
    answer = wait_for(routed, 5 + 10, "the edge to route the domain", step=0.5)
    assert (answer["workspace"], answer["host"]) == ("demo", HOST)
    spoofed = shell.json(steps["edge_spoofed"])
    assert (spoofed["workspace"], spoofed["host"]) == ("demo", HOST)

    # 6. Removed at once; the edge forgets it within its cache time.
    removed = shell.json(steps["remove"])
    assert removed["status"] == "removed"
    wait_for(lambda: routed() is None, EDGE_FORGETS_WITHIN, "the edge to answer 404", step=1)

    # 7. ./dev status lists the stack's own processes; after Ctrl-C none is left.
    status = shell.run(steps["status"])
    assert status.returncode == 0, status.stderr
    pids = [int(p) for p in re.findall(r"pid (\d+)", status.stdout)]
    assert readme_stack.proc.pid in pids
    assert set(readme_stack.child_pids()) <= set(pids), (status.stdout, readme_stack.child_pids())
    assert "gone" not in status.stdout
    readme_stack.proc.send_signal(signal.SIGINT)
    readme_stack.proc.wait(timeout=STOP_TIMEOUT)
    assert [pid for pid in readme_stack.child_pids() if _alive(pid)] == []
    after = shell.run(steps["status"])
    assert after.returncode == 1 and "no local stack is running" in after.stderr

    assert dns_first_failures == [], (
        f"the README's DNS-first promises do not hold: {dns_first_failures}")
