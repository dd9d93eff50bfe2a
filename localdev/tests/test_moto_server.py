"""moto in server mode as a subprocess: start, stop, restart, reset, ACM timing."""

from __future__ import annotations

import socket
import time
from typing import Any

import boto3
import botocore.exceptions
import pytest

from localdev.moto_server import MotoHandle, MotoStartError, aws_env, start_moto

pytestmark = pytest.mark.integration


def _client(service: str, moto: MotoHandle, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Through the environment only, as the app's settings-free boto3 clients would be.
    for key, value in aws_env(moto.endpoint_url).items():
        monkeypatch.setenv(key, value)
    return boto3.client(service)


def test_aws_env_points_boto3_at_moto(moto: MotoHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    assert aws_env(moto.endpoint_url) == {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto.port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    dynamodb = _client("dynamodb", moto, monkeypatch)

    assert "TableNames" in dynamodb.list_tables()


def test_acm_certificate_is_pending_then_issued_after_the_wait(
    moto: MotoHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    acm = _client("acm", moto, monkeypatch)
    # Taken before the request: moto's clock starts when it creates the certificate.
    requested = time.monotonic()
    arn = acm.request_certificate(
        DomainName="shop.example.com",
        SubjectAlternativeNames=["shop.example.com", "www.shop.example.com"],
        ValidationMethod="DNS",
    )["CertificateArn"]

    pending = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert pending["Status"] == "PENDING_VALIDATION"
    options = sorted(pending["DomainValidationOptions"], key=lambda o: o["DomainName"])
    assert [o["DomainName"] for o in options] == ["shop.example.com", "www.shop.example.com"]
    assert options[0] == {
        "DomainName": "shop.example.com",
        "ValidationDomain": "shop.example.com",
        "ValidationStatus": "PENDING_VALIDATION",
        "ValidationMethod": "DNS",
        "ResourceRecord": {
            # moto's record is fixed: the same label and value for every certificate.
            "Name": "_d930b28be6c5927595552b219965053e.shop.example.com.",
            "Type": "CNAME",
            "Value": "_c9edd76ee4a0e2a74388032f3861cc50.ykybfrwcxw.acm-validations.aws.",
        },
    }

    while (status := acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"]) == (
        "PENDING_VALIDATION"
    ):
        assert time.monotonic() - requested < moto.acm_validation_wait + 5, "never issued"
        time.sleep(0.1)
    # moto issues once more than MOTO_ACM_VALIDATION_WAIT seconds have passed.
    assert status == "ISSUED"
    assert time.monotonic() - requested > moto.acm_validation_wait
    issued = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert {o["ValidationStatus"] for o in issued["DomainValidationOptions"]} == {"SUCCESS"}


def test_reset_drops_every_resource(moto: MotoHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    acm = _client("acm", moto, monkeypatch)
    acm.request_certificate(DomainName="reset.example.com", ValidationMethod="DNS")
    assert acm.list_certificates()["CertificateSummaryList"]

    moto.reset()

    assert acm.list_certificates()["CertificateSummaryList"] == []


def test_stop_refuses_connections_and_restart_reuses_the_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with start_moto(acm_validation_wait=0) as moto:
        acm = _client("acm", moto, monkeypatch)
        acm.request_certificate(DomainName="shop.example.com", ValidationMethod="DNS")
        port, pid = moto.port, moto.pid

        moto.stop()
        assert not moto.is_running()
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            acm.list_certificates()
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
            pass

        moto.restart()
        assert (moto.port, moto.endpoint_url) == (port, f"http://127.0.0.1:{port}")
        assert moto.pid != pid
        # A restarted moto starts empty: it keeps no state on disk.
        assert acm.list_certificates()["CertificateSummaryList"] == []
    assert not moto.is_running()


def test_busy_port_is_a_clear_error(moto: MotoHandle) -> None:
    with pytest.raises(MotoStartError, match="cannot listen"):
        start_moto(port=moto.port)


def test_acm_validation_wait_must_be_whole_seconds() -> None:
    with pytest.raises(TypeError, match="whole seconds"):
        start_moto(acm_validation_wait=0.5)
    with pytest.raises(ValueError, match="loopback"):
        start_moto(host="0.0.0.0")
