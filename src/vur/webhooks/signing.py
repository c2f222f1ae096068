"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", hex-encoded.

The sender puts the Unix timestamp in `X-VUR-Timestamp` and `sha256=<hex>` in
`X-VUR-Signature`. Signing the timestamp with the body lets a receiver refuse a replayed
request once it is older than its tolerance. Both our outgoing webhooks and the
incoming ones we accept use these two functions.
"""

from __future__ import annotations

import hashlib
import hmac
import time

PREFIX = "sha256="


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp_header: str | None, signature_header: str | None, body: bytes, tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """True when the signature is the secret's for this body and timestamp, and the
    timestamp is within `tolerance_seconds` of `now` (either side: clocks drift)."""
    if not timestamp_header or not signature_header:
        return False
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    given = signature_header.removeprefix(PREFIX)
    return hmac.compare_digest(given.encode(), sign(secret, timestamp, body).encode())
