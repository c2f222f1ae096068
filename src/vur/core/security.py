"""Password hashing (argon2), signed access tokens (JWT, HS256 only) and credentials encrypted at rest."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from vur.core.db import utcnow

_hasher = PasswordHasher()
ALGORITHM = "HS256"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verified against when the email is unknown, so that both paths cost the same time
    # (no account enumeration by timing). Made on first use: hashing costs ~0.1 s.
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def create_access_token(secret: str, subject: uuid.UUID, minutes: int, claims: dict[str, Any] | None = None) -> str:
    now = utcnow()
    payload = {
        "sub": str(subject),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=minutes)).timestamp()),
        "jti": uuid.uuid4().hex,
        "typ": "access",
        **(claims or {}),
    }
    import jwt  # with cryptography, ~0.1 s: on the first token, not at start-up

    return jwt.encode(payload, secret, algorithm=ALGORITHM)


class InvalidAccessToken(ValueError):
    pass


def decode_access_token(secret: str, token: str) -> dict[str, Any]:
    """Raises InvalidAccessToken for anything but a valid, unexpired HS256 access token.
    Pinning `algorithms` is what rejects `alg: none` and algorithm-confusion tokens."""
    import jwt

    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "typ"]})
    except jwt.InvalidTokenError as exc:
        raise InvalidAccessToken(str(exc)) from exc
    if payload.get("typ") != "access":
        raise InvalidAccessToken("not an access token")
    return payload


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def hash_opaque_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _fernet(secret: str) -> Any:
    import base64

    from cryptography.fernet import Fernet

    # A key of its own, derived from the instance secret: rotating the signing secret
    # makes stored credentials unreadable, which is the point.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"vur-credentials:{secret}".encode()).digest()))


def encrypt_secret(secret: str, plaintext: str) -> str:
    """Authenticated encryption (Fernet: AES-CBC + HMAC) of a credential at rest."""
    return _fernet(secret).encrypt(plaintext.encode()).decode()


def decrypt_secret(secret: str, ciphertext: str) -> str:
    return _fernet(secret).decrypt(ciphertext.encode()).decode()
