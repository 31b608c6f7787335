"""The gossip keyring: AES-GCM sealing, the primary key and rotation (gossipdht.core.keyring)."""

from __future__ import annotations

import base64

import pytest

from gossipdht.core.keyring import (
    OVERHEAD,
    SEALED,
    Keyring,
    KeyringError,
    Unopened,
    encode_key,
    fingerprint,
    new_key,
    parse_key,
)

A, B, C = b"a" * 16, b"b" * 24, b"c" * 32


def test_a_sealed_message_is_version_nonce_ciphertext_and_tag_and_opens_again():
    keyring = Keyring([A])
    sealed = keyring.seal(b"hello", b"cluster\0gossip")
    assert sealed[0] == SEALED and len(sealed) == len(b"hello") + OVERHEAD == 5 + 1 + 12 + 16
    assert b"hello" not in sealed
    assert keyring.open(sealed, b"cluster\0gossip") == b"hello"
    assert keyring.seal(b"hello", b"x") != keyring.seal(b"hello", b"x")  # a fresh nonce each time


def test_what_it_was_sealed_for_is_bound_to_it():
    keyring = Keyring([A])
    sealed = keyring.seal(b"hello", b"cluster-1\0gossip")
    for aad in (b"cluster-2\0gossip", b"cluster-1\0rpc", b""):
        with pytest.raises(Unopened):
            keyring.open(sealed, aad)


def test_a_changed_byte_or_another_key_does_not_open():
    sealed = Keyring([A]).seal(b"hello", b"")
    for i in range(1, len(sealed)):
        tampered = sealed[:i] + bytes([sealed[i] ^ 1]) + sealed[i + 1:]
        with pytest.raises(Unopened):
            Keyring([A]).open(tampered, b"")
    with pytest.raises(Unopened, match="no installed key opens it"):
        Keyring([B]).open(sealed, b"")
    for garbage in (b"", b"\x01plaintext gossip", bytes([SEALED]) + b"short"):
        with pytest.raises(Unopened):
            Keyring([A]).open(garbage, b"")


def test_the_primary_seals_and_every_installed_key_opens():
    old, new = Keyring([A]), Keyring([A])
    assert new.install(B) and not new.install(B)
    assert new.primary == A and old.open(new.seal(b"m", b""), b"") == b"m"
    assert new.use(B) and not new.use(B)
    assert new.keys == [B, A]
    with pytest.raises(Unopened):
        old.open(new.seal(b"m", b""), b"")  # sealed with B now, which old lacks
    assert new.open(old.seal(b"m", b""), b"") == b"m"  # A still opens
    assert new.remove(A) and not new.remove(A)
    with pytest.raises(Unopened):
        new.open(old.seal(b"m", b""), b"")


def test_the_primary_cannot_be_removed_and_only_an_installed_key_can_be_used():
    keyring = Keyring([A, B])
    with pytest.raises(KeyringError, match="is the primary; use another key before removing it"):
        keyring.remove(A)
    with pytest.raises(KeyringError, match="is not installed; install it first"):
        keyring.use(C)
    assert keyring.keys == [A, B]
    with pytest.raises(KeyringError):
        Keyring([])


@pytest.mark.parametrize("text, error", [
    ("not base64!", "standard base64"),
    (base64.b64encode(b"x" * 20).decode(), "16, 24 or 32 bytes"),
    ("", "16, 24 or 32 bytes"),
])
def test_a_key_is_base64_of_16_24_or_32_bytes(text, error):
    with pytest.raises(KeyringError, match=error):
        parse_key(text)
    for key in (A, B, C):
        assert parse_key(encode_key(key)) == key


def test_a_new_key_is_32_random_bytes_and_a_fingerprint_does_not_show_it():
    key = parse_key(new_key())
    assert len(key) == 32 and parse_key(new_key()) != key
    assert len(fingerprint(key)) == 12 and fingerprint(key) not in encode_key(key)
