"""moto's server app with the SaaS Manager emulation in front, on one port.

`localdev.moto_server` starts this module instead of `python -m moto.server`; it accepts the
same `-H/-p` arguments and the inherited listening socket (WERKZEUG_SERVER_FD). Emulator
knobs may also come from the environment (VEDOMAINS_EMU_* below) so `./dev run` can set them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

from localdev.saas_manager import SaasManagerMiddleware

ENV_CONFIG = {
    "VEDOMAINS_EMU_DEPLOY_SECONDS": ("deploy_seconds", float),
    "VEDOMAINS_EMU_CERTIFICATE_ATTACH_SECONDS": ("certificate_attach_seconds", float),
    "VEDOMAINS_EMU_DNS_SERVER": ("dns_server", str),
    "VEDOMAINS_EMU_EDGE_PROXY": ("edge_proxy", str),
    "VEDOMAINS_EMU_SELF_HOSTED_PORT": ("self_hosted_port", int),
    "VEDOMAINS_EMU_LIMITS": ("limits", json.loads),
}


def build_app() -> SaasManagerMiddleware:
    moto_app = DomainDispatcherApplication(create_backend_app)
    app = SaasManagerMiddleware(moto_app)
    changes: dict[str, Any] = {}
    for env, (key, parse) in ENV_CONFIG.items():
        if os.environ.get(env):
            changes[key] = parse(os.environ[env])
    if changes:
        app.manager.configure(changes)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.aws_endpoint")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(args.host, args.port, build_app(), threaded=True,
               request_handler=MotoRequestHandler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
