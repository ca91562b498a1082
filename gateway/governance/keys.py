"""Virtual keys: their format, the keyed hash they are stored and looked up by — pure.

A key is `sk-gw-` followed by 48 hex characters (192 random bits from `secrets`). The database
keeps HMAC-SHA256(server secret, key) — never the key — so a leaked table cannot be used to
call the gateway, and the same HMAC is the lookup key of an in-memory dict (O(1)); the match is
confirmed with `hmac.compare_digest` (directory.py). Afterwards a key is shown by its first
characters only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "sk-gw-"
_RANDOM_HEX = 48
KEY_LENGTH = len(KEY_PREFIX) + _RANDOM_HEX
_SHOWN = 4  # random characters shown in a key's display prefix


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_hex(_RANDOM_HEX // 2)


def new_key_id() -> str:
    """The key's public id (ledger `api_key_id`, admin API paths): unrelated to the secret."""
    return "key_" + secrets.token_hex(8)


def well_formed(token: str) -> bool:
    if len(token) != KEY_LENGTH or not token.startswith(KEY_PREFIX):
        return False
    tail = token[len(KEY_PREFIX) :]
    try:
        bytes.fromhex(tail)  # in C: hex digits (and whitespace, refused below)
    except ValueError:
        return False
    return tail.isalnum() and tail == tail.lower()


def display_prefix(secret: str) -> str:
    return secret[: len(KEY_PREFIX) + _SHOWN] + "…"


def hash_secret_from(master_key: str, configured: str | None) -> bytes:
    """The HMAC key: `auth.key_hash_secret`, else one derived from the master key."""
    if configured:
        return configured.encode()
    return hmac.new(master_key.encode(), b"gateway virtual key hashing v1", hashlib.sha256).digest()


def key_hash(secret: str, hash_key: bytes) -> str:
    return hmac.digest(hash_key, secret.encode(), "sha256").hex()  # one-shot: C all the way


class KeyHasher:
    """`key_hash` with one server secret, keyed once: each hash copies the keyed state
    (OpenSSL's HMAC context) instead of looking the digest up and keying it again
    (1.7 → 1.1 µs a request's credential)."""

    __slots__ = ("_keyed",)

    def __init__(self, hash_key: bytes) -> None:
        self._keyed = hmac.new(hash_key, digestmod=hashlib.sha256)

    def __call__(self, secret: str) -> str:
        h = self._keyed.copy()
        h.update(secret.encode())
        return h.hexdigest()
