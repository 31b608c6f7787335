"""The gossip keyring: AES-GCM keys that seal and open what nodes send each other.

As in HashiCorp memberlist: keys of 16, 24 or 32 bytes, the first one primary; the
primary seals, every installed key is tried to open, so that a cluster can rotate its
key while it runs (install a new key everywhere, use it, then remove the old one).
A sealed message is ``[version][12-byte random nonce][ciphertext and 16-byte tag]``,
and what it must be read with (the cluster's name, the kind of message) is bound to it
as additional data: a message sealed for another cluster or purpose does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Callable, Iterable, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: The first byte of a sealed message; plaintext gossip starts with ``wire.VERSION`` (1).
SEALED = 0x80
NONCE_BYTES = 12
TAG_BYTES = 16
#: What sealing adds to a message.
OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES
KEY_SIZES = (16, 24, 32)


class KeyringError(ValueError):
    """A key that is not base64 of 16, 24 or 32 bytes, or a keyring change that is refused."""


class Unopened(ValueError):
    """A sealed message that no installed key opens (or that is not a sealed message)."""


def parse_key(text: str) -> bytes:
    """The key that ``text`` (standard base64) encodes; KeyringError if it is not one."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError("a key is standard base64 (gossipdht keygen prints one)") from None
    if len(key) not in KEY_SIZES:
        raise KeyringError(f"a key is 16, 24 or 32 bytes (AES-128, -192 or -256), not {len(key)}")
    return key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def new_key(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A new 32-byte key, in base64."""
    return encode_key(random_bytes(32))


def fingerprint(key: bytes) -> str:
    """What logs and answers may show of a key: the start of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:12]


class Keyring:
    """The installed keys, the primary first: seals with the primary, opens with any."""

    def __init__(self, keys: Iterable[bytes], random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._keys: list[bytes] = []
        self._ciphers: dict[bytes, AESGCM] = {}
        self._random_bytes = random_bytes
        for key in keys:
            self.install(key)
        if not self._keys:
            raise KeyringError("a keyring holds at least one key")

    @property
    def keys(self) -> list[bytes]:
        return list(self._keys)

    @property
    def primary(self) -> bytes:
        return self._keys[0]

    def install(self, key: bytes) -> bool:
        """Add a key (not primary); False if it was installed already."""
        if len(key) not in KEY_SIZES:
            raise KeyringError(f"a key is 16, 24 or 32 bytes, not {len(key)}")
        if key in self._ciphers:
            return False
        self._keys.append(key)
        self._ciphers[key] = AESGCM(key)
        return True

    def use(self, key: bytes) -> bool:
        """Make an installed key the primary; False if it was the primary already."""
        if key not in self._ciphers:
            raise KeyringError(f"key {fingerprint(key)} is not installed; install it first")
        if self._keys[0] == key:
            return False
        self._keys.remove(key)
        self._keys.insert(0, key)
        return True

    def remove(self, key: bytes) -> bool:
        """Remove a key that is not the primary; False if it was not installed."""
        if key not in self._ciphers:
            return False
        if self._keys[0] == key:
            raise KeyringError(f"key {fingerprint(key)} is the primary; use another key before removing it")
        self._keys.remove(key)
        del self._ciphers[key]
        return True

    def seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = self._random_bytes(NONCE_BYTES)
        return bytes([SEALED]) + nonce + self._ciphers[self._keys[0]].encrypt(nonce, data, aad)

    def holds(self, key: bytes) -> bool:
        return key in self._ciphers

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """The message ``seal`` sealed with any installed key and the same ``aad``."""
        return self.open_with_key(sealed, aad)[0]

    def open_with_key(self, sealed: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """The message, as ``open`` gives it, and the installed key that opened it."""
        if len(sealed) < OVERHEAD or sealed[0] != SEALED:
            raise Unopened("not a sealed message")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        for key in self._keys:
            try:
                return self._ciphers[key].decrypt(nonce, body, aad), key
            except InvalidTag:
                continue
        raise Unopened("no installed key opens it")


def describe(keyring: Optional[Keyring]) -> str:
    """One line for logs: how many keys, and the primary's fingerprint."""
    if keyring is None:
        return "no keyring"
    return f"{len(keyring.keys)} key(s), primary {fingerprint(keyring.primary)}"
