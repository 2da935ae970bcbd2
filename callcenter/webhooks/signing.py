"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
# Receivers reject messages signed longer ago (or further ahead) than this; replay protection.
TOLERANCE_S = 300


class SignatureError(ValueError):
    """A webhook's headers or signature do not check out; the message says which."""


def secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_…`` secret (base64 after the prefix)."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 bytes of key")
    return key


def generate_secret() -> str:
    """A new random secret in the ``whsec_`` form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """One ``v1,`` signature of a message."""
    # surrogateescape: a header that was not UTF-8 signs as the bytes that came in, not a 500.
    to_sign = f"{msg_id}.{timestamp}.{body}".encode("utf-8", "surrogateescape")
    digest = hmac.new(secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_: Iterable[str], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret (for key rotation)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets_),
    }


def verify(
    secrets_: Iterable[str],
    headers_: Mapping[str, str],
    body: str,
    now: float,
    tolerance: float = TOLERANCE_S,
) -> str:
    """Checks a received webhook against any of our secrets and returns its webhook-id."""
    lower = {k.lower(): v for k, v in headers_.items()}
    msg_id = lower.get("webhook-id", "")
    stamp = lower.get("webhook-timestamp", "")
    signatures = lower.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError("webhook-timestamp is outside the allowed window")
    offered = {s.strip() for s in signatures.split(" ") if s.startswith("v1,")}
    for secret in secrets_:
        expected = sign(secret, msg_id, timestamp, body)
        # Bytes: compare_digest refuses str with non-ASCII letters (a TypeError, a 500).
        want = expected.encode()
        if any(hmac.compare_digest(want, c.encode("utf-8", "surrogateescape")) for c in offered):
            return msg_id
    raise SignatureError("no signature matches")
