"""`./dev manage COMMAND ...`: a management command with the development settings, aimed at
the running local stack.

`./dev run` writes var/stack.json once it is ready (its local AWS endpoint, DNS server, DNS
control API, database and broker) and removes it when it stops. This reads it, so
`./dev manage check_domains` resolves against the stack's DNS server and talks to its moto,
exactly as the stack's own worker does. Before, such a command used the system resolver and
real AWS: `check_domains` got NXDOMAIN for an active local domain, marked it misconfigured
and emailed its owner; `reconcile_edge --dry-run` went looking for AWS credentials.

With no stack running, a command that may reach AWS or DNS is refused (exit 2, one line)
unless the environment asks for it: VEDOMAINS_ALLOW_REAL_AWS=1 (the AWS and DNS this
environment configures, on purpose), or VEDOMAINS_AWS_ENDPOINT_URL set to an endpoint of
its own. Commands that never leave the machine (migrate, createsuperuser, ...) always run.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from localdev.stack import STACK_FILE_NAME

ROOT: Final = Path(__file__).resolve().parent.parent
ALLOW_REAL_AWS: Final = "VEDOMAINS_ALLOW_REAL_AWS"
# Never reach AWS nor resolve customers' DNS. local_dns talks to the local DNS server only.
OFFLINE_COMMANDS: Final = frozenset({
    "help", "version", "check", "diffsettings", "migrate", "makemigrations",
    "showmigrations", "sqlmigrate", "squashmigrations", "optimizemigration", "dbshell",
    "createsuperuser", "changepassword", "collectstatic", "findstatic", "inspectdb",
    "build_edge_lambda", "local_dns", "createcachetable", "clearsessions", "sendtestemail",
    # Pings Celery workers over the broker; no AWS, no DNS.
    "worker_health",
})


class Refused(Exception):
    """Why the command may not run; one line for the terminal."""


def running_stack(var_dir: Path) -> dict[str, Any] | None:
    """The stack file's content if that stack is still up (its supervisor alive and its
    moto answering), else None: a file left by a killed stack does not count."""
    path = var_dir / STACK_FILE_NAME
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        pid = int(content["pid"])
        moto = str(content["moto"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, someone else's
    try:
        with urllib.request.urlopen(moto + "/moto-api/", timeout=2) as response:
            if response.status != 200:
                return None
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return dict(content)


def command_env(argv: list[str], env: Mapping[str, str], var_dir: Path) -> dict[str, str]:
    """The environment to run `manage.py argv` in; raises Refused."""
    command = argv[0] if argv else "help"
    result = dict(env)
    if env.get(ALLOW_REAL_AWS, "").lower() in ("1", "true", "yes"):
        return result
    stack = running_stack(var_dir)
    if stack is not None:
        # The stack's values win over the shell's: the command acts on what is running.
        result.update({str(k): str(v) for k, v in dict(stack.get("env") or {}).items()})
        return result
    if command in OFFLINE_COMMANDS or command.startswith("-") or env.get(
        "VEDOMAINS_AWS_ENDPOINT_URL"
    ):
        return result
    raise Refused(
        f"no local stack is running (no live {var_dir / STACK_FILE_NAME}), so `{command}` "
        "would use real AWS and the system DNS resolver; start `./dev run` first, or set "
        f"{ALLOW_REAL_AWS}=1 to use them on purpose"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status_lines(var_dir: Path) -> list[str]:
    """`./dev status`: the running stack's own processes by pid (a `ps | grep` would also
    match other users' processes on a shared machine). Empty when no stack is running."""
    stack = running_stack(var_dir)
    if stack is None:
        return []
    lines = [f"stack supervisor  pid {stack['pid']}  (python -m localdev.stack)"]
    for name, pid in dict(stack.get("pids") or {}).items():
        if pid is None:
            continue
        state = "running" if _alive(int(pid)) else "gone"
        lines.append(f"{name:<17} pid {pid}  {state}")
    return lines


def status_main(var_dir: Path) -> int:
    lines = status_lines(var_dir)
    if not lines:
        print(f"dev: no local stack is running (no live {var_dir / STACK_FILE_NAME})",
              file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    var_dir = Path(os.environ.get("VEDOMAINS_LOCAL_VAR_DIR") or ROOT / "var")
    if args[:1] == ["--status"]:
        return status_main(var_dir)
    try:
        env = command_env(args, os.environ, var_dir)
    except Refused as exc:
        print(f"dev: {exc}", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    os.execve(sys.executable, [sys.executable, "manage.py", *args], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
