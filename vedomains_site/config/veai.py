"""The ve.ai integration: sign-in with the main app's tokens, the service-to-service sync,
plan changes, CORS for its frontend. Checked by `veai.system_checks` (E2xx)."""

from __future__ import annotations

from vedomains_site.config.environment import env

# Sign-in with the main app's tokens: RS256/ES256 JWTs verified against its JWKS (keys are
# cached and refetched when an unknown `kid` arrives, at most once per cooldown) or against
# one static PEM public key. Off when neither is set: then only DRF tokens and sessions work.
VEDOMAINS_JWT_JWKS_URL: str = env.str("VEDOMAINS_JWT_JWKS_URL", default="")
VEDOMAINS_JWT_PUBLIC_KEY: str = env.str("VEDOMAINS_JWT_PUBLIC_KEY",
                                        default="").replace("\\n", "\n")
VEDOMAINS_JWT_ISSUER: str = env.str("VEDOMAINS_JWT_ISSUER", default="https://ve.ai")
# The stable name under which main-app identities (token subjects, synced members) are kept:
# the `iss` URL may change (a new auth domain) without orphaning every identity.
VEDOMAINS_JWT_ISSUER_ID: str = env.str("VEDOMAINS_JWT_ISSUER_ID", default="ve.ai")
VEDOMAINS_JWT_AUDIENCE: str = env.str("VEDOMAINS_JWT_AUDIENCE", default="vedomains")
# Only those in vedomains_site/config/allowed.py (E205).
VEDOMAINS_JWT_ALGORITHMS: list[str] = env.list("VEDOMAINS_JWT_ALGORITHMS",
                                               default=["RS256", "ES256"])
VEDOMAINS_JWT_LEEWAY_SECONDS: int = env.int("VEDOMAINS_JWT_LEEWAY_SECONDS", default=60)
VEDOMAINS_JWKS_CACHE_SECONDS: int = env.int("VEDOMAINS_JWKS_CACHE_SECONDS", default=300)
VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS: int = env.int("VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS",
                                                       default=30)
VEDOMAINS_JWKS_TIMEOUT_SECONDS: float = env.float("VEDOMAINS_JWKS_TIMEOUT_SECONDS", default=5.0)
# Service-to-service sync (workspaces, plans, members): HMAC-SHA256 request signatures with
# one of these shared secrets (several at once while rotating). Empty: the sync API is off.
VEDOMAINS_SERVICE_SECRETS: list[str] = [
    s for s in env.list("VEDOMAINS_SERVICE_SECRETS", default=[]) if s]
VEDOMAINS_SERVICE_SIGNATURE_TOLERANCE_SECONDS: int = env.int(
    "VEDOMAINS_SERVICE_SIGNATURE_TOLERANCE_SECONDS", default=300)
# Plan changes: a downgrade below the live domains blocks new ones at once; after the grace
# period the newest extras are detached. Owners are emailed at the downgrade and this long
# before the detachment. Fractions allowed.
VEDOMAINS_PLAN_GRACE_SECONDS: float = env.float("VEDOMAINS_PLAN_GRACE_SECONDS", default=604800.0)
VEDOMAINS_PLAN_WARNING_SECONDS: float = env.float("VEDOMAINS_PLAN_WARNING_SECONDS",
                                                  default=86400.0)
VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS: int = env.int("VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS",
                                                       default=300)
# CORS for the ve.ai frontend (bearer tokens, no cookies) on the user API only.
VEDOMAINS_CORS_ALLOWED_ORIGINS: list[str] = env.list(
    "VEDOMAINS_CORS_ALLOWED_ORIGINS", default=["https://ve.ai", "https://app.ve.ai"])
