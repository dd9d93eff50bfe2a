"""Ask a sandbox AWS account the CloudFront SaaS Manager questions no document answers.

Each question is asked with the smallest resources (one tenant, one certificate, one record)
under labels of a hostname the operator controls; every resource is recorded the moment it
is created and deleted at the end, also on Ctrl-C or SIGTERM. The answers come out as rows
of docs/aws-fidelity.md (behaviour | source | emulator behaviour | test), ready to paste.
See docs/aws-fidelity.md, "Asking a real account".
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.hostnames import HostnameError, normalize_hostname
from domains.integrations import aws, cdn, edge_store
from domains.integrations.acm import AcmStatus
from domains.integrations.errors import IntegrationError

LIVE_FLAG = "--i-know-this-account-is-live"
PROBE_TAG = "vedomains-probe"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # AWS managed cache policy


class ProbeInterrupted(BaseException):
    """SIGINT/SIGTERM: stop asking, clean up. BaseException so no `except Exception` eats it."""


@dataclass(frozen=True)
class Row:
    """One row of docs/aws-fidelity.md's table."""

    behaviour: str
    source: str
    emulator: str
    test: str

    def line(self) -> str:
        cells = (self.behaviour, self.source, self.emulator, self.test)
        return "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |"


HEADER = ("| behaviour | source | emulator behaviour | test that pins it |\n"
          "| --- | --- | --- | --- |")

# question key -> (behaviour, what the emulator does, the test that pins it)
QUESTIONS: dict[str, tuple[str, str, str]] = {
    "before_dns_cloudfront": (
        "CreateDistributionTenant before DNS points at CloudFront, managed certificate "
        "validated by `cloudfront`",
        "refuses InvalidArgument (\"Could not verify Domain Name ownership\") until the name "
        "resolves to the edge",
        "tests/test_dns_first.py::test_emulator_refuses_a_tenant_for_a_name_not_pointing_at_the_edge"),
    "before_dns_self_hosted": (
        "CreateDistributionTenant before DNS moves, managed certificate `self-hosted`",
        "same refusal as `cloudfront` (the strict choice while unverified)",
        "tests/test_dns_first.py, tests/test_cdn_tenant.py (prevalidated_before_dns both ways)"),
    "before_dns_acm": (
        "CreateDistributionTenant before DNS moves, with an issued ACM certificate "
        "(Customizations.Certificate)",
        "same refusal (the strict choice while unverified)",
        "tests/test_dns_first.py, tests/test_cdn_tenant.py (prevalidated_before_dns both ways)"),
    "get_returns_tags": (
        "GetDistributionTenant returns the tenant's Tags",
        "never returns Tags; ListTagsForResource does",
        "tests/test_saas_emulator_fidelity.py::test_emulator_get_has_no_tags_and_tags_are_listed"),
    "partial_update": (
        "UpdateDistributionTenant with only Id, IfMatch and Enabled (no Domains)",
        "refuses InvalidArgument (\"at least one domain\")",
        "tests/test_saas_emulator_fidelity.py::test_emulator_refuses_an_update_without_domains"),
    "whole_update": (
        "UpdateDistributionTenant with the whole tenant re-sent (Terraform's way)",
        "accepted; fields left out are cleared",
        "tests/test_saas_emulator_fidelity.py::test_emulator_update_replaces_the_whole_tenant"),
    "managed_cert_requester": (
        "Who requests the managed certificate in ACM (the caller's acm:RequestCertificate "
        "permission, or CloudFront's own)",
        "creates it in the account's ACM; permissions not emulated",
        "unverified: no test"),
    "delete_keeps_managed_cert": (
        "DeleteDistributionTenant deletes the tenant's managed certificate",
        "no: the certificate stays in ACM (ResourceInUseException while a tenant uses it)",
        "tests/test_saas_emulator_fidelity.py::"
        "test_emulator_keeps_the_managed_certificate_after_the_tenant_is_deleted"),
    "unused_required_parameter": (
        "A multi-tenant distribution accepts a required tenant parameter that no origin or "
        "path uses",
        "accepted (moto keeps the config; parameters not checked)",
        "unverified: no test"),
}


@dataclass
class Created:
    kind: str  # tenant | certificate | record | distribution
    ident: str
    extra: dict[str, Any] = field(default_factory=dict)


class Probe:
    def __init__(self, *, hostname: str, zone_id: str, distribution_id: str,
                 connection_group_id: str, poll: float, wait: float, cleanup_wait: float,
                 write: Callable[[str], None], run: str = "") -> None:
        self.hostname, self.zone_id = hostname, zone_id
        self.distribution_id, self.connection_group_id = distribution_id, connection_group_id
        self.poll, self.wait, self.cleanup_wait = poll, wait, cleanup_wait
        self.write = write
        self.run = run or uuid.uuid4().hex[:8]
        self.created: list[Created] = []
        self.rows: list[Row] = []
        self.source = f"aws_probe {datetime.now(UTC):%Y-%m-%d}"
        self.tenant: str = ""  # the tenant the update/tag/delete questions use

    # -- bookkeeping -------------------------------------------------------------------

    def record(self, kind: str, ident: str, **extra: Any) -> None:
        self.created.append(Created(kind, ident, extra))
        self.write(f"created {kind} {ident}")

    def answer(self, key: str, observed: str) -> None:
        behaviour, emulator, test = QUESTIONS[key]
        row = Row(behaviour, f"{self.source}: {observed}", emulator, test)
        self.rows.append(row)
        self.write(row.line())

    def name(self, label: str) -> str:
        return f"{label}-{self.run}.{self.hostname}"

    @staticmethod
    def _cf() -> Any:
        return aws.client("cloudfront", "us-east-1")

    def _sleep_until(self, done: Callable[[], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not done():
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.poll)
        return True

    # -- the questions -----------------------------------------------------------------

    def ask_all(self) -> None:
        self.ask("before_dns_cloudfront", lambda: self._create_tenant(
            self.name("cf"), ManagedCertificateRequest={"ValidationTokenHost": "cloudfront"}))
        self.ask("before_dns_self_hosted", lambda: self._create_tenant(
            self.name("sh"), ManagedCertificateRequest={"ValidationTokenHost": "self-hosted"}))
        self.ask("before_dns_acm", self._before_dns_acm)
        if not self.tenant and self.zone_id:
            self._tenant_after_dns()
        for key, step in (("get_returns_tags", self._get_returns_tags),
                          ("partial_update", self._partial_update),
                          ("whole_update", self._whole_update),
                          ("managed_cert_requester", self._managed_cert_requester),
                          ("delete_keeps_managed_cert", self._delete_keeps_managed_cert)):
            if self.tenant:
                self.ask(key, step)
            else:
                self.answer(key, "unknown: no tenant could be made (give --hosted-zone-id so "
                                 "the probe can point a name at the connection group)")
        self.ask("unused_required_parameter", self._unused_required_parameter)

    def ask(self, key: str, step: Callable[[], str]) -> None:
        try:
            observed = step()
        except ClientError as exc:
            observed = f"refused: {aws.error_code(exc)}: {exc.response['Error'].get('Message', '')}"
        except (BotoCoreError, IntegrationError) as exc:
            observed = f"unknown: {exc}"
        self.answer(key, observed)

    def _create_tenant(self, domain: str, **extra: Any) -> str:
        params: dict[str, Any] = {
            "DistributionId": self.distribution_id, "Name": domain.replace(".", "-")[:128],
            "Domains": [{"Domain": domain}], "Enabled": True,
            "Parameters": [{"Name": cdn.WORKSPACE_PARAMETER,
                            "Value": "aws-probe"}],
            "Tags": {"Items": [{"Key": PROBE_TAG, "Value": self.run}]}, **extra,
        }
        if self.connection_group_id:
            params["ConnectionGroupId"] = self.connection_group_id
        tenant = self._cf().create_distribution_tenant(**params)["DistributionTenant"]
        self.record("tenant", tenant["Id"])
        self.tenant = self.tenant or str(tenant["Id"])
        return "accepted"

    def _before_dns_acm(self) -> str:
        if not self.zone_id:
            return "unknown: an issued ACM certificate needs its validation record (give " \
                   "--hosted-zone-id)"
        domain = self.name("acm")
        acm = aws.client("acm", "us-east-1")
        arn = acm.request_certificate(DomainName=domain, ValidationMethod="DNS",
                                      Tags=[{"Key": PROBE_TAG, "Value": self.run}])[
            "CertificateArn"]
        self.record("certificate", arn)
        records: list[dict[str, str]] = []

        def validation_record() -> bool:
            options = acm.describe_certificate(CertificateArn=arn)["Certificate"].get(
                "DomainValidationOptions") or []
            records[:] = [o["ResourceRecord"] for o in options if o.get("ResourceRecord")]
            return bool(records)

        if not self._sleep_until(validation_record, self.wait):
            return f"unknown: ACM gave no validation record within {self.wait:g} s"
        for rr in records:
            self._put_record(rr["Name"], rr["Type"], rr["Value"])
        issued = self._sleep_until(lambda: acm.describe_certificate(CertificateArn=arn)[
            "Certificate"]["Status"] == AcmStatus.ISSUED, self.wait)
        if not issued:
            return f"unknown: the certificate was not issued within {self.wait:g} s"
        return self._create_tenant(domain, Customizations={"Certificate": {"Arn": arn}})

    def _put_record(self, name: str, rtype: str, value: str) -> None:
        change = {"Action": "CREATE", "ResourceRecordSet": {
            "Name": name, "Type": rtype, "TTL": 60, "ResourceRecords": [{"Value": value}]}}
        route53 = aws.client("route53", "us-east-1")
        answer = route53.change_resource_record_sets(
            HostedZoneId=self.zone_id, ChangeBatch={"Changes": [change]})
        self.record("record", name, type=rtype, value=value)
        change_id = answer["ChangeInfo"]["Id"]
        self._sleep_until(lambda: route53.get_change(Id=change_id)["ChangeInfo"]["Status"]
                          == "INSYNC", self.wait)

    def _tenant_after_dns(self) -> None:
        """No tenant before DNS: point a name at the connection group, then make one."""
        try:
            group = self._cf().get_connection_group(
                Identifier=self.connection_group_id)["ConnectionGroup"]
            domain = self.name("dns")
            self._put_record(domain, "CNAME", str(group["RoutingEndpoint"]))
            self._create_tenant(domain,
                                ManagedCertificateRequest={"ValidationTokenHost": "cloudfront"})
        except (ClientError, BotoCoreError) as exc:
            self.write(f"no tenant after DNS either: {exc}")

    def _get(self) -> dict[str, Any]:
        return dict(self._cf().get_distribution_tenant(Identifier=self.tenant))

    def _get_returns_tags(self) -> str:
        return "yes" if "Tags" in self._get()["DistributionTenant"] else "no"

    def _partial_update(self) -> str:
        before = self._get()
        self._cf().update_distribution_tenant(Id=self.tenant, IfMatch=before["ETag"],
                                              Enabled=True)
        current = self._get()
        after = current["DistributionTenant"]
        lost = [k for k in ("Domains", "Parameters", "ConnectionGroupId", "Customizations")
                if before["DistributionTenant"].get(k) and not after.get(k)]
        if not lost:
            return "accepted; the fields left out were kept"
        # Put the tenant back whole: without a domain it could not even be disabled later.
        self._cf().update_distribution_tenant(
            IfMatch=current["ETag"], **cdn.tenant_update_body(before["DistributionTenant"]))
        return f"accepted; cleared: {', '.join(lost)}"

    def _whole_update(self) -> str:
        got = self._get()
        body = cdn.tenant_update_body(got["DistributionTenant"])
        self._cf().update_distribution_tenant(IfMatch=got["ETag"], **body)
        return "accepted"

    def _managed_cert_requester(self) -> str:
        arn = self._managed_arn()
        if not arn:
            return "unknown: the tenant has no managed certificate"
        cert = aws.client("acm", "us-east-1").describe_certificate(CertificateArn=arn)[
            "Certificate"]
        return (f"certificate in the account's ACM, ManagedBy={cert.get('ManagedBy', 'none')}; "
                "whose permission requested it: unknown from the API (see CloudTrail's "
                "RequestCertificate event for it)")

    def _managed_arn(self, tenant_id: str = "") -> str:
        try:
            details = self._cf().get_managed_certificate_details(
                Identifier=tenant_id or self.tenant)
        except ClientError as exc:
            if aws.error_code(exc) == "EntityNotFound":
                return ""
            raise
        return str(details["ManagedCertificateDetails"].get("CertificateArn", ""))

    def _delete_keeps_managed_cert(self) -> str:
        arn = self._managed_arn()
        if not arn:
            return "unknown: the tenant has no managed certificate"
        self.record("certificate", arn)  # if it outlives the tenant, it is ours to delete
        if not self._delete_tenant(self.tenant, self.cleanup_wait):
            return f"unknown: the tenant was not deleted within {self.cleanup_wait:g} s"
        acm = aws.client("acm", "us-east-1")

        def gone() -> bool:
            try:
                acm.describe_certificate(CertificateArn=arn)
            except ClientError as exc:
                return aws.error_code(exc) == "ResourceNotFoundException"
            return False

        if self._sleep_until(gone, self.wait):
            return "yes: the certificate was gone after the tenant's deletion"
        return f"no: the certificate was still in ACM {self.wait:g} s after the tenant's deletion"

    def _unused_required_parameter(self) -> str:
        config = {
            "CallerReference": f"vedomains-probe-{self.run}", "Comment": "vedomains aws_probe",
            "Enabled": False, "ConnectionMode": "tenant-only",
            "TenantConfig": {"ParameterDefinitions": [{
                "Name": "unusedProbe", "Definition": {"StringSchema": {"Required": True}}}]},
            "Origins": {"Quantity": 1, "Items": [{
                "Id": "probe", "DomainName": "example.com",
                "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                       "OriginProtocolPolicy": "https-only"}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "probe",
                                     "ViewerProtocolPolicy": "redirect-to-https",
                                     "CachePolicyId": CACHING_DISABLED},
        }
        dist = self._cf().create_distribution(DistributionConfig=config)["Distribution"]
        self.record("distribution", dist["Id"])
        return "accepted"

    # -- clean-up ------------------------------------------------------------------------

    def _delete_tenant(self, tenant_id: str, seconds: float) -> bool:
        def step() -> bool:
            try:
                got = self._cf().get_distribution_tenant(Identifier=tenant_id)
            except ClientError as exc:
                if aws.error_code(exc) == "EntityNotFound":
                    return True
                raise
            tenant = got["DistributionTenant"]
            if tenant.get("Enabled"):
                body = cdn.tenant_update_body(tenant)
                body["Enabled"] = False
                self._cf().update_distribution_tenant(IfMatch=got["ETag"], **body)
                return False
            if tenant.get("Status") != "Deployed":
                return False
            managed = self._managed_arn(tenant_id)
            if managed and ("certificate", managed) not in {(c.kind, c.ident)
                                                            for c in self.created}:
                self.record("certificate", managed)  # it may outlive the tenant
            self._cf().delete_distribution_tenant(Id=tenant_id, IfMatch=got["ETag"])
            return True

        return self._sleep_until(step, seconds)

    def _delete_distribution(self, dist_id: str, seconds: float) -> bool:
        def step() -> bool:
            try:
                got = self._cf().get_distribution_config(Id=dist_id)
            except ClientError as exc:
                if aws.error_code(exc) == "NoSuchDistribution":
                    return True
                raise
            if got["DistributionConfig"].get("Enabled"):
                got["DistributionConfig"]["Enabled"] = False
                self._cf().update_distribution(Id=dist_id, IfMatch=got["ETag"],
                                               DistributionConfig=got["DistributionConfig"])
                return False
            status = self._cf().get_distribution(Id=dist_id)["Distribution"]["Status"]
            if status != "Deployed":
                return False
            self._cf().delete_distribution(Id=dist_id, IfMatch=got["ETag"])
            return True

        return self._sleep_until(step, seconds)

    def _delete_certificate(self, arn: str, seconds: float) -> bool:
        acm = aws.client("acm", "us-east-1")

        def step() -> bool:
            try:
                acm.delete_certificate(CertificateArn=arn)
            except ClientError as exc:
                code = aws.error_code(exc)
                if code == "ResourceNotFoundException":
                    return True
                if code == "ResourceInUseException":  # CloudFront lets go in minutes
                    return False
                raise
            return True

        return self._sleep_until(step, seconds)

    def _delete_record(self, item: Created) -> bool:
        change = {"Action": "DELETE", "ResourceRecordSet": {
            "Name": item.ident, "Type": item.extra["type"], "TTL": 60,
            "ResourceRecords": [{"Value": item.extra["value"]}]}}
        try:
            aws.client("route53", "us-east-1").change_resource_record_sets(
                HostedZoneId=self.zone_id, ChangeBatch={"Changes": [change]})
        except ClientError as exc:
            if aws.error_code(exc) != "InvalidChangeBatch":  # already gone
                raise
        return True

    def cleanup(self) -> list[str]:
        """Delete everything recorded, newest first (tenants before their certificates);
        each kind retried until done or `cleanup_wait`. Returns what could not be deleted."""
        left: list[str] = []
        seen: set[tuple[str, str]] = set()
        # By kind, each phase reading the record afresh: deleting a tenant records its
        # managed certificate, which the certificate phase then deletes.
        items = (item for kind in ("tenant", "distribution", "certificate", "record")
                 for item in [c for c in reversed(self.created) if c.kind == kind])
        for item in items:
            if (item.kind, item.ident) in seen:
                continue
            seen.add((item.kind, item.ident))
            try:
                if item.kind == "tenant":
                    done = self._delete_tenant(item.ident, self.cleanup_wait)
                elif item.kind == "distribution":
                    done = self._delete_distribution(item.ident, self.cleanup_wait)
                elif item.kind == "certificate":
                    done = self._delete_certificate(item.ident, self.cleanup_wait)
                else:
                    done = self._delete_record(item)
            except (ClientError, BotoCoreError) as exc:
                self.write(f"could not delete {item.kind} {item.ident}: {exc}")
                done = False
            self.write(f"{'deleted' if done else 'LEFT'} {item.kind} {item.ident}")
            if not done:
                left.append(f"{item.kind} {item.ident}")
        return left


@contextmanager
def _interruptible(write: Callable[[str], None]) -> Iterator[Callable[[], None]]:
    """SIGINT/SIGTERM raise ProbeInterrupted while asking; during clean-up they are noted
    and ignored (the yielded function switches to that), so a second Ctrl-C cannot leave
    resources behind half-deleted."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    cleaning = False

    def handler(signum: int, frame: FrameType | None) -> None:
        if cleaning:
            write(f"signal {signum} during clean-up: finishing the clean-up first")
            return
        raise ProbeInterrupted(signal.Signals(signum).name)

    def now_cleaning() -> None:
        nonlocal cleaning
        cleaning = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield now_cleaning
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def live_mappings() -> bool:
    """Does the edge table hold any active mapping? (No table: no.)"""
    try:
        return any(item.status == "active" for item in edge_store.scan(segments=1,
                                                                       page_size=100))
    except IntegrationError as exc:
        if exc.code == "ResourceNotFoundException":
            return False
        raise CommandError(f"cannot read the edge table to check for live mappings: {exc}"
                           ) from exc


class Command(BaseCommand):
    help = ("Ask a SANDBOX AWS account the SaaS Manager questions the docs leave open; print "
            "docs/aws-fidelity.md rows; delete everything made, even when interrupted.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hostname", required=True,
                            help="A name you control; the probe uses labels under it.")
        parser.add_argument("--hosted-zone-id", default="",
                            help="A Route 53 zone holding --hostname the probe may write "
                                 "(validation and routing CNAMEs).")
        parser.add_argument("--distribution-id", default="",
                            help="Multi-tenant distribution (default: the setting).")
        parser.add_argument("--connection-group-id", default="",
                            help="Connection group (default: the setting).")
        parser.add_argument("--wait-seconds", type=float, default=600.0,
                            help="How long to wait for AWS to do something (certificate "
                                 "issued, certificate gone) before answering 'unknown'.")
        parser.add_argument("--cleanup-seconds", type=float, default=3600.0,
                            help="How long clean-up waits for each deletion (deploys take "
                                 "minutes).")
        parser.add_argument("--poll-seconds", type=float, default=15.0)
        parser.add_argument("--run-id", default="",
                            help="Label of this run in every name (default: random).")
        parser.add_argument(LIVE_FLAG, action="store_true", dest="live_ok",
                            help="Run even though the edge table holds active mappings.")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            hostname = normalize_hostname(opts["hostname"])
        except HostnameError as exc:
            raise CommandError(f"--hostname is not a usable hostname: {exc}") from exc
        distribution_id = (opts["distribution_id"]
                           or settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID)
        if not distribution_id:
            raise CommandError("no multi-tenant distribution: give --distribution-id or set "
                               "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID")
        if not opts["live_ok"] and live_mappings():
            raise CommandError(f"the edge table holds active mappings: this looks like a live "
                               f"account; run in a sandbox, or pass {LIVE_FLAG}")
        write = self.stdout.write
        probe = Probe(hostname=hostname, zone_id=opts["hosted_zone_id"],
                      distribution_id=distribution_id,
                      connection_group_id=(opts["connection_group_id"]
                                           or settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID),
                      poll=opts["poll_seconds"], wait=opts["wait_seconds"],
                      cleanup_wait=opts["cleanup_seconds"], write=write,
                      run=opts["run_id"])
        interrupted = ""
        left: list[str] = []
        with _interruptible(write) as now_cleaning:
            try:
                write(HEADER)
                probe.ask_all()
            except ProbeInterrupted as exc:
                interrupted = str(exc)
            finally:
                now_cleaning()
                left = probe.cleanup()
        write("")
        write(HEADER)
        for row in probe.rows:
            write(row.line())
        if left:
            raise CommandError(f"could not delete (do it by hand): {'; '.join(left)}")
        if interrupted:
            raise CommandError(f"interrupted by {interrupted}; everything made was deleted "
                               f"({len(probe.created)} resources)")
