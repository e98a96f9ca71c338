"""HMAC-signed CSRF tokens and the middleware that requires one on every unsafe request.

A token is ``<issued-at>.<nonce>.<signature>``, the signature being HMAC-SHA256 over the first two
parts under a key derived from MONEYTRACKER_SECRET_KEY. ``GET /api/csrf`` hands one out; every
POST/PUT/PATCH/DELETE must send it back in ``X-CSRF-Token``. A cross-site page can neither read a
token (the API grants no CORS) nor set a custom header on a cross-site request without a CORS
preflight the API refuses; the signature means only this server (with this secret) can mint
tokens, and they expire. Rotating the secret invalidates all outstanding tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_TTL_SECONDS = 12 * 3600
CLOCK_SKEW_SECONDS = 60


class CsrfSigner:
    def __init__(self, secret: str, ttl: int = TOKEN_TTL_SECONDS) -> None:
        # A purpose-bound subkey: the raw secret is never used directly as a MAC key.
        self._key = hmac.new(secret.encode(), b"moneytracker/csrf/v1", hashlib.sha256).digest()
        self._ttl = ttl

    def __repr__(self) -> str:
        return "CsrfSigner(<key hidden>)"

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, now: float | None = None) -> str:
        payload = f"{int(now if now is not None else time.time())}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str | None, now: float | None = None) -> bool:
        if not token or len(token) > 200:
            return False
        parts = token.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        expected = self._sign(f"{parts[0]}.{parts[1]}")
        if not hmac.compare_digest(expected.encode(), parts[2].encode()):
            return False
        age = (now if now is not None else time.time()) - int(parts[0])
        return -CLOCK_SKEW_SECONDS <= age <= self._ttl


class CsrfMiddleware:
    """Pure ASGI middleware: 403 for unsafe HTTP methods without a valid token."""

    def __init__(self, app, signer: CsrfSigner) -> None:
        self.app = app
        self.signer = signer

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            token = None
            for name, value in scope.get("headers", []):
                if name == HEADER.encode():
                    token = value.decode("latin-1")
                    break
            if not self.signer.verify(token):
                body = json.dumps({"detail": "missing or invalid CSRF token (GET /api/csrf, send it as X-CSRF-Token)"}).encode()
                await send({
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                })
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
