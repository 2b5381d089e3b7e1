"""Passwords and session cookies for the annotation app, with the standard library only.

Passwords are hashed with scrypt (RFC 7914; n=2**14, r=8, p=1, 16-byte random salt) and stored as
`scrypt$n$r$p$salt$hash`. A session is a signed cookie: base64url(JSON) + "." + HMAC-SHA256 over it
with the project's secret (kept in the database, so sessions survive restarts). The cookie carries
the user id, the user's session epoch (bumped on a password change, which logs out old cookies),
the CSRF token every form must echo, and when it was issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SESSION_MAX_AGE_S = 7 * 24 * 3600


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`, self-describing so parameters can change later."""
    if not password:
        raise ValueError("empty password: give a non-empty one")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64e(salt)}${_b64e(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored` (constant-time comparison); False for a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _b64d(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"), salt=_b64d(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def new_token() -> str:
    """A random URL-safe token (CSRF tokens, generated passwords)."""
    return secrets.token_urlsafe(24)


def sign(payload: dict, secret: bytes) -> str:
    """`payload` plus an issue time, serialised and signed for a cookie."""
    body = _b64e(json.dumps({**payload, "iat": int(time.time())}, separators=(",", ":")).encode())
    mac = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64e(mac)}"


def unsign(token: str | None, secret: bytes, max_age_s: int = SESSION_MAX_AGE_S) -> dict | None:
    """The payload of a cookie made by `sign`, or None if it is missing, forged, malformed or expired."""
    if not token or token.count(".") != 1 or not token.isascii():  # a cookie is any bytes a client sends
        return None
    body, mac = token.split(".")
    expected = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_b64d(mac), expected):
            return None
        payload = json.loads(_b64d(body))
    except ValueError:  # bad base64 or JSON (UnicodeDecodeError is a ValueError too)
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("iat", 0), int):
        return None
    if time.time() - payload.get("iat", 0) > max_age_s:
        return None
    return payload
