"""Values a setting may take, shared by its system check and the code that uses the setting
(not star-imported by settings.py: these are not settings)."""

from __future__ import annotations

# The algorithms VEDOMAINS_JWT_ALGORITHMS may name: symmetric ones (HS*) and "none" would let
# anyone holding the public key mint tokens. The check (E205) and the verifier both use it.
ASYMMETRIC_JWT_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"})
