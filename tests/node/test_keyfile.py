"""Keyring files and which one is in force at start-up (gossipdht.node.keyfile)."""

from __future__ import annotations

import os
import stat

import pytest

from gossipdht.core.keyring import Keyring, encode_key
from gossipdht.node import keyfile

A, B = b"a" * 32, b"b" * 16


def test_keys_are_read_primary_first_with_comments_and_blank_lines(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# the cluster's keys\n\n{encode_key(A)}  # primary\n{encode_key(B)}\n")
    assert keyfile.read(str(path)).keys == [A, B]


@pytest.mark.parametrize("text, error", [
    ("# nothing\n", "holds no key"),
    (f"{encode_key(A)}\nc2VjcmV0LXNob3J0\n", "line 2: a key is 16, 24 or 32 bytes"),
    ("not*base64\n", "line 1: a key is standard base64"),
])
def test_a_bad_file_names_the_line_and_never_a_key(tmp_path, text, error):
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(keyfile.KeyfileError, match=error) as e:
        keyfile.read(str(path))
    assert "c2VjcmV0" not in str(e.value) and encode_key(A) not in str(e.value)
    with pytest.raises(keyfile.KeyfileError, match="cannot read"):
        keyfile.read(str(tmp_path / "missing"))


def test_a_written_keyring_is_read_back_and_readable_by_its_owner_only(tmp_path):
    path = str(tmp_path / "keyring")
    keyfile.write(path, Keyring([B, A]))
    assert keyfile.read(path).keys == [B, A]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not os.path.exists(path + ".new")


def test_the_bootstrap_file_is_saved_then_the_saved_keyring_wins_and_the_log_says_so(tmp_path):
    data_dir, bootstrap = str(tmp_path / "data"), tmp_path / "bootstrap"
    bootstrap.write_text(encode_key(A) + "\n")
    assert keyfile.in_force(data_dir, None) == (None, "")
    keyring, origin = keyfile.in_force(data_dir, str(bootstrap))
    saved = os.path.join(data_dir, keyfile.FILE_NAME)
    assert keyring.keys == [A] and origin == f"from --keyring {bootstrap}, saved to {saved} (rotations are kept there)"
    assert keyfile.read(saved).keys == [A]
    keyring, origin = keyfile.in_force(data_dir, str(bootstrap))
    assert origin.endswith("only bootstrapped it and holds the same keys")
    keyfile.write(saved, Keyring([B]))  # a rotation since
    keyring, origin = keyfile.in_force(data_dir, str(bootstrap))
    assert keyring.keys == [B]
    assert origin == (f"from {saved}; --keyring {bootstrap} only bootstrapped it and differs from it: "
                      "rotations since then are kept here")
    keyring, origin = keyfile.in_force(data_dir, None)  # the bootstrap file may be gone: the saved one is kept
    assert keyring.keys == [B] and origin == f"from {saved}"
