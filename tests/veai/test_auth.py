"""Sign-in with the main app's JWTs, verified against a JWKS served on loopback."""

from __future__ import annotations

import threading
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from domains.integrations import main_app_tokens
from domains.models import Role
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.polling import wait_for
from tests.veai.helpers import (
    ISSUER,
    ISSUER_ID,
    JwksServer,
    SigningKey,
    bearer,
)
from veai.identity import external_username
from veai.models import ExternalIdentity

pytestmark = pytest.mark.django_db


def test_a_valid_token_signs_in_and_creates_the_user_once(main_key: SigningKey) -> None:
    token = main_key.token("auth0|abc", email="ana@client.com")
    r = bearer(token).get("/api/domains/")
    assert r.status_code == 200, r.content
    identity = ExternalIdentity.objects.get(issuer=ISSUER_ID, subject="auth0|abc")
    assert identity.user.email == "ana@client.com"
    # Not the subject as username: a subject equal to someone's username gains nothing.
    assert identity.user.username == external_username(issuer=ISSUER_ID, subject="auth0|abc")
    assert not identity.user.has_usable_password()
    assert bearer(main_key.token("auth0|abc")).get("/api/domains/").status_code == 200
    assert ExternalIdentity.objects.filter(subject="auth0|abc").count() == 1


def test_a_subject_named_like_an_existing_user_is_a_different_user(main_key: SigningKey) -> None:
    victim = UserFactory(username="admin")
    ws = WorkspaceFactory(slug="victim-ws")
    MembershipFactory(workspace=ws, user=victim, role=Role.OWNER)
    r = bearer(main_key.token("admin")).get("/api/domains/?workspace=victim-ws")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "not_member"


def test_the_user_sees_only_workspaces_the_sync_made_them_a_member_of(
    main_key: SigningKey,
) -> None:
    bearer(main_key.token("sub-9")).get("/api/domains/")
    user = ExternalIdentity.objects.get(subject="sub-9").user
    ws = WorkspaceFactory(slug="mine")
    MembershipFactory(workspace=ws, user=user, role=Role.OWNER)
    r = bearer(main_key.token("sub-9")).get("/api/domains/?workspace=mine")
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda k: k.token(expires_in=-3600), "token_expired"),
        (lambda k: k.token(issuer="https://evil.test"), "invalid_issuer"),
        (lambda k: k.token(audience="another-service"), "invalid_audience"),
        (lambda k: k.token(nbf=int(time.time()) + 3600), "token_not_yet_valid"),
        (lambda k: k.token()[:-4] + "AAAA", "invalid_token"),
        (lambda k: "not.a.jwt", "invalid_token"),
        (lambda k: SigningKey("RSA").token(kid=k.kid), "invalid_token"),  # forged, our kid
        (lambda k: SigningKey("RSA").token(), "unknown_key"),  # foreign key
        (lambda k: jwt.encode({"iss": ISSUER, "aud": "vedomains", "sub": "x",
                               "exp": int(time.time()) + 60, "iat": int(time.time())},
                              "s" * 32, algorithm="HS256", headers={"kid": k.kid}),
         "unsupported_algorithm"),
        (lambda k: jwt.encode({"iss": ISSUER, "aud": "vedomains", "sub": "x",
                               "exp": int(time.time()) + 60}, None, algorithm="none"),
         "unsupported_algorithm"),
        (lambda k: jwt.encode({"iss": ISSUER, "aud": "vedomains", "exp": int(time.time()) + 60,
                               "iat": int(time.time())}, k.private, algorithm="RS256",
                              headers={"kid": k.kid}), "missing_claim"),
    ],
)
def test_bad_expired_and_foreign_tokens_answer_401_json(main_key: SigningKey, make: Any,
                                                        code: str) -> None:
    r = bearer(make(main_key)).get("/api/domains/")
    assert r.status_code == 401, r.content
    assert r.json()["error"]["code"] == code
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert not ExternalIdentity.objects.exists()


def test_clock_skew_within_the_leeway_is_accepted(main_key: SigningKey, settings: Any) -> None:
    settings.VEDOMAINS_JWT_LEEWAY_SECONDS = 60
    assert bearer(main_key.token(expires_in=-30)).get("/api/domains/").status_code == 200
    assert bearer(main_key.token(expires_in=-90)).get("/api/domains/").status_code == 401
    # Issued "in the future" by a main app whose clock runs ahead.
    assert bearer(main_key.token(issued_ago=-30)).get("/api/domains/").status_code == 200


def test_keys_rotate_without_a_restart(jwks: JwksServer, settings: Any) -> None:
    old, new = SigningKey("RSA"), SigningKey("EC")
    jwks.publish(old)
    assert bearer(old.token("rot")).get("/api/domains/").status_code == 200
    fetched = jwks.fetches
    # Cached: more requests with a known kid do not fetch again.
    for _ in range(3):
        assert bearer(old.token("rot")).get("/api/domains/").status_code == 200
    assert jwks.fetches == fetched
    # The main app rotates: new key published, old one withdrawn. The unknown kid refetches.
    settings.VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS = 0
    jwks.publish(new)
    assert bearer(new.token("rot")).get("/api/domains/").status_code == 200
    assert jwks.fetches == fetched + 1


def test_unknown_kids_refetch_at_most_once_per_cooldown(jwks: JwksServer, main_key: SigningKey
                                                       ) -> None:
    assert bearer(main_key.token()).get("/api/domains/").status_code == 200
    before = jwks.fetches
    # A flood of made-up kids (all from one attacker's key) must not become a flood of
    # fetches. Within the cooldown of the first fetch a set that may be stale cannot tell a
    # new key from a made-up one: 503 with Retry-After, never 401.
    for _ in range(20):
        r = bearer(SigningKey("EC").token()).get("/api/domains/")
        assert r.status_code == 503, r.content
        assert r.json()["error"]["code"] == "auth_unavailable"
        assert 1 <= int(r["Retry-After"]) <= 30
    assert jwks.fetches == before


def test_a_key_published_just_after_a_refetch_is_never_a_401(jwks: JwksServer, settings: Any,
                                                              main_key: SigningKey) -> None:
    """rotation inside the cooldown must not sign anyone out."""
    # Something (a made-up kid) triggers a refetch: the cooldown starts now.
    assert bearer(SigningKey("EC").token()).get("/api/domains/").status_code == 401
    # The main app publishes a new key and at once starts signing with it.
    new = SigningKey("EC")
    jwks.publish(main_key, new)
    r = bearer(new.token("rotated")).get("/api/domains/")
    assert r.status_code == 503, r.content
    assert r.json()["error"]["code"] == "auth_unavailable"
    assert int(r["Retry-After"]) >= 1
    # Once the cooldown has passed, the same token works (no restart, no sign-out).
    settings.VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS = 0
    main_app_tokens.reset_clients()
    assert bearer(new.token("rotated")).get("/api/domains/").status_code == 200


def test_threads_with_a_new_kid_share_one_refetch(jwks: JwksServer, main_key: SigningKey,
                                                  settings: Any) -> None:
    # No cooldown, so only the sharing can keep the eight threads to one fetch.
    settings.VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS = 0
    assert bearer(main_key.token()).get("/api/domains/").status_code == 200
    before = jwks.fetches
    new = SigningKey("RSA")
    jwks.publish(main_key, new)
    cache = main_app_tokens.jwks_cache()
    results: list[object] = []

    def verify() -> None:
        try:
            results.append(main_app_tokens.verify_token(new.token("t")).subject)
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results.append(exc)

    threads = [threading.Thread(target=verify) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # Every thread arrived before the one fetch started or waited for it: all see the key.
    assert results == ["t"] * 8
    assert jwks.fetches - before == 1 == cache.fetches - 1


@pytest.mark.parametrize("body", [b"<html>Bad gateway</html>", b'{"keys": 3}', b"[]"])
def test_a_jwks_answering_garbage_is_503_not_500(settings: Any, db: Any, body: bytes) -> None:
    server = JwksServer().start()
    server.raw_body = body
    try:
        settings.VEDOMAINS_JWT_JWKS_URL = server.url
        settings.VEDOMAINS_JWT_ISSUER = ISSUER
        main_app_tokens.reset_clients()
        r = bearer(SigningKey("RSA").token()).get("/api/domains/")
        assert r.status_code == 503, r.content
        assert r.json()["error"]["code"] == "auth_unavailable"
        assert r["Retry-After"]
    finally:
        server.stop()
        main_app_tokens.reset_clients()


def test_a_withdrawn_key_stops_working_once_the_key_set_cache_expires(
    jwks: JwksServer, settings: Any
) -> None:
    settings.VEDOMAINS_JWKS_CACHE_SECONDS = 1
    old, new = SigningKey("RSA"), SigningKey("RSA")
    jwks.publish(old, new)
    assert bearer(old.token()).get("/api/domains/").status_code == 200
    jwks.publish(new)
    wait_for(lambda: bearer(old.token()).get("/api/domains/").status_code != 200, 10,
             "the withdrawn key to stop working")
    assert bearer(new.token()).get("/api/domains/").status_code == 200


def test_an_unreachable_jwks_answers_503_not_401(settings: Any, db: Any) -> None:
    server = JwksServer().start()
    url = server.url
    server.stop()  # nothing listens there any more
    settings.VEDOMAINS_JWT_JWKS_URL = url
    settings.VEDOMAINS_JWT_ISSUER = ISSUER
    settings.VEDOMAINS_JWKS_TIMEOUT_SECONDS = 1.0
    main_app_tokens.reset_clients()
    r = bearer(SigningKey("RSA").token()).get("/api/domains/")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "auth_unavailable"
    main_app_tokens.reset_clients()


def test_a_static_public_key_works_instead_of_a_jwks(settings: Any, db: Any) -> None:
    key = SigningKey("EC")
    settings.VEDOMAINS_JWT_JWKS_URL = ""
    settings.VEDOMAINS_JWT_PUBLIC_KEY = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings.VEDOMAINS_JWT_ISSUER = ISSUER
    assert bearer(key.token("static")).get("/api/domains/").status_code == 200
    assert bearer(SigningKey("EC").token("static")).get("/api/domains/").status_code == 401


def test_drf_tokens_still_work_for_scripts_and_staff(main_key: SigningKey) -> None:
    staff = UserFactory(is_staff=True)
    token = Token.objects.create(user=staff)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/domains/").status_code == 200


def test_an_inactive_user_is_refused(main_key: SigningKey) -> None:
    bearer(main_key.token("gone")).get("/api/domains/")
    user = ExternalIdentity.objects.get(subject="gone").user
    user.is_active = False
    user.save()
    r = bearer(main_key.token("gone")).get("/api/domains/")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "user_inactive"


def test_bearer_is_ignored_when_sign_in_is_not_configured(settings: Any, db: Any) -> None:
    settings.VEDOMAINS_JWT_JWKS_URL = ""
    settings.VEDOMAINS_JWT_PUBLIC_KEY = ""
    r = bearer(SigningKey("RSA").token()).get("/api/domains/")
    assert r.status_code == 401
    assert r["WWW-Authenticate"] == "Token"


def test_a_new_issuer_url_keeps_every_identity(main_key: SigningKey, settings: Any) -> None:
    """identities are keyed by VEDOMAINS_JWT_ISSUER_ID, not the `iss` URL."""
    assert bearer(main_key.token("auth0|keep")).get("/api/domains/").status_code == 200
    user = ExternalIdentity.objects.get(subject="auth0|keep").user
    settings.VEDOMAINS_JWT_ISSUER = "https://auth.ve.ai"
    token = main_key.token("auth0|keep", issuer="https://auth.ve.ai")
    r = bearer(token).get("/api/domains/")
    assert r.status_code == 200
    assert ExternalIdentity.objects.get(subject="auth0|keep").user == user
    assert ExternalIdentity.objects.count() == 1
    # The old URL is no longer accepted.
    assert bearer(main_key.token("auth0|keep")).get("/api/domains/").status_code == 401


def test_a_nul_in_the_subject_or_email_is_never_a_500(main_key: SigningKey) -> None:
    r = bearer(main_key.token("auth0|a\x00b")).get("/api/domains/")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_subject"
    r = bearer(main_key.token("auth0|nul-mail", email="a\x00@b.test")).get("/api/domains/")
    assert r.status_code == 200
    assert ExternalIdentity.objects.get(subject="auth0|nul-mail").user.email == ""
