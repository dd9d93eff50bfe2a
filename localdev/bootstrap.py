"""One-off set-up steps of the local stack that need Django, run as a child process.

    python -m localdev.bootstrap setup --var-dir var     # what `./dev run` does at start
    python -m localdev.bootstrap member --workspace e2e --username e2e-owner

`setup`: apply migrations; create the DynamoDB table and a template CloudFront
distribution in moto (whose state lives in memory, so this runs on every start) and push
the active mappings back into the fresh table (the table is a projection of Django, so a
backfill restores it); create the demo staff login, workspace, member and API token
once; write the edge function's config as `build_edge_lambda` would bake it.
`member`: create (or reuse) a workspace on a paid plan with an owner and an API token.

Each prints one JSON object on stdout for `localdev.stack` (or a test) to read. It runs
in its own process so the stack's supervisor never imports Django: the children read
their settings from the environment the stack gives them, and so does this.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any, Final

ADMIN_USERNAME: Final = "admin"
ADMIN_FILE: Final = "local-admin.json"
EDGE_CONFIG_FILE: Final = "edge_config.json"
DEMO_WORKSPACE: Final = "demo"
DEMO_MEMBER: Final = "demo-owner"


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vedomains_site.settings")
    import django

    django.setup()


def _say(message: str) -> None:
    # stdout carries the JSON result; progress goes to stderr (the stack's log).
    print(f"bootstrap: {message}", file=sys.stderr, flush=True)


def ensure_member(
    *, workspace_slug: str, workspace_name: str, plan: str, username: str
) -> dict[str, Any]:
    """A workspace on `plan` with `username` as its owner, and that user's API token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from domains.models import Membership, Role, Workspace

    workspace, created = Workspace.objects.get_or_create(
        slug=workspace_slug, defaults={"name": workspace_name, "plan": plan}
    )
    if not created and workspace.plan != plan:
        workspace.plan = plan
        workspace.save(update_fields=["plan"])
    user, user_created = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com"}
    )
    if user_created:
        # An API user: it signs in with its token, never with a password.
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": Role.OWNER})
    token, _ = Token.objects.get_or_create(user=user)
    return {
        "workspace": workspace.slug,
        "plan": workspace.plan,
        "username": user.username,
        "token": token.key,
    }


def ensure_admin(var_dir: Path) -> dict[str, Any]:
    """The demo staff login: created once with a random password kept in var/.

    Later runs show the stored password if it still works; if it was changed (or var/ was
    wiped while the database survived), they say how to set a new one instead.
    """
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    path = var_dir / ADMIN_FILE
    user = users.filter(username=ADMIN_USERNAME).first()
    if user is None:
        password = secrets.token_urlsafe(12)
        users.create_superuser(ADMIN_USERNAME, f"{ADMIN_USERNAME}@example.com", password)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only: it is a login, even if only a local one.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"username": ADMIN_USERNAME, "password": password}, handle)
        return {
            "username": ADMIN_USERNAME,
            "password": password,
            "created": True,
            "file": str(path),
        }
    stored = None
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8")).get("password")
        except (OSError, ValueError):
            stored = None
    if stored and user.check_password(stored):
        return {"username": ADMIN_USERNAME, "password": stored, "created": False, "file": str(path)}
    return {"username": ADMIN_USERNAME, "password": None, "created": False, "file": str(path)}


def create_template_distribution(*, origin_domain: str, comment: str = "vedomains template"
                                 ) -> str:
    """Create the template distribution in the emulator (production's comes from deploy/).

    A minimal config with one custom origin; deploy/ adds the cache policy with Host in the
    key and the Lambda@Edge association, which the local emulator cannot express. The
    distribution-per-domain strategy clones it (VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID).
    """
    from botocore.exceptions import ClientError

    from domains.integrations import aws

    cloudfront = aws.client("cloudfront", "us-east-1")
    config = {
        "CallerReference": f"vedomains-template-{origin_domain}",
        "Comment": comment,
        "Enabled": False,
        "Aliases": {"Quantity": 0},
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "ve-origin",
                    "DomainName": origin_domain,
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": "https-only",
                    },
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "ve-origin",
            "ViewerProtocolPolicy": "redirect-to-https",
            "ForwardedValues": {
                "QueryString": True,
                "Cookies": {"Forward": "none"},
                # Host in the cache key so tenants never share cached pages.
                "Headers": {"Quantity": 1, "Items": ["Host"]},
            },
            "MinTTL": 0,
        },
        "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
    }
    try:
        resp = cloudfront.create_distribution(DistributionConfig=config)
    except ClientError as exc:
        if aws.error_code(exc) == "DistributionAlreadyExists":
            for page in cloudfront.get_paginator("list_distributions").paginate():
                for item in page.get("DistributionList", {}).get("Items", []) or []:
                    if item.get("Comment") == comment:
                        return str(item["Id"])
        raise aws.classify(exc, "cloudfront.CreateDistribution(template)") from exc
    return str(resp["Distribution"]["Id"])


def migrations_not_on_disk() -> list[str]:
    """Our apps' migrations the database recorded but this checkout does not have: a
    database made before the migrations were squashed, which `migrate` would half-apply
    (an index that already exists) instead of saying so."""
    from django.apps import apps
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    root = Path(__file__).resolve().parent.parent
    ours = {c.label for c in apps.get_app_configs() if Path(c.path).parent == root}
    return sorted(f"{app}.{name}" for app, name in loader.applied_migrations
                  if app in ours and (app, name) not in loader.disk_migrations)


def setup(var_dir: Path) -> dict[str, Any]:
    from django.conf import settings
    from django.core.management import call_command

    from domains.integrations import edge_store
    from edge import sync as edge_sync
    from edge.config import edge_config_from_settings
    from localdev import saas_resources

    stale = migrations_not_on_disk()
    if stale:
        raise SystemExit(
            f"this database has migrations this version does not ({', '.join(stale[:3])}): it "
            "predates the squashed migrations of the app split; delete var/db.sqlite3 (or "
            "drop the DATABASE_URL database) and run again")
    _say("applying migrations")
    call_command("migrate", interactive=False, verbosity=0)

    _say(
        "creating the edge table and a template distribution in "
        f"{settings.VEDOMAINS_AWS_ENDPOINT_URL}"
    )
    edge_store.create_table()
    template_id = create_template_distribution(
        origin_domain=settings.VEDOMAINS_EDGE_ORIGIN_DOMAIN
    )
    # The default strategy's resources (deploy/saas-manager.yaml in production).
    multi_tenant_id = saas_resources.create_multi_tenant_distribution(
        origin_domain=settings.VEDOMAINS_EDGE_ORIGIN_DOMAIN
    )
    group_id, routing_endpoint = saas_resources.create_connection_group()
    backfill = edge_sync.edge_backfill()
    _say(f"pushed {backfill.get('written', 0)} active mapping(s) to the edge table")

    edge_config = edge_config_from_settings()
    edge_config_path = var_dir / EDGE_CONFIG_FILE
    edge_config_path.parent.mkdir(parents=True, exist_ok=True)
    edge_config_path.write_text(
        json.dumps(edge_config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )

    return {
        "template_distribution_id": template_id,
        "multi_tenant_distribution_id": multi_tenant_id,
        "connection_group_id": group_id,
        "routing_endpoint": routing_endpoint,
        "edge_config": str(edge_config_path),
        "admin": ensure_admin(var_dir),
        "demo": ensure_member(
            workspace_slug=DEMO_WORKSPACE,
            workspace_name="Demo Studio",
            plan="pro",
            username=DEMO_MEMBER,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.bootstrap", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_setup = sub.add_parser("setup", help="migrate, local AWS resources, demo data")
    p_setup.add_argument("--var-dir", type=Path, required=True)
    p_member = sub.add_parser("member", help="a workspace owner with an API token")
    p_member.add_argument("--workspace", required=True)
    p_member.add_argument("--name", default="")
    p_member.add_argument("--plan", default="pro")
    p_member.add_argument("--username", required=True)
    args = parser.parse_args(argv)

    _django()
    if args.command == "setup":
        result = setup(args.var_dir.resolve())
    else:
        result = ensure_member(
            workspace_slug=args.workspace,
            workspace_name=args.name or args.workspace.title(),
            plan=args.plan,
            username=args.username,
        )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
