"""Keyring files: one base64 key per line, the primary first; ``#`` starts a comment.

The file given with ``--keyring`` only bootstraps a node: from then on the node keeps its
keyring in its data directory, where rotations are saved, and that copy is the one in
force when it starts again (the start-up log says which one it is).
"""

from __future__ import annotations

import os
from typing import Optional

from gossipdht.core.keyring import Keyring, KeyringError, encode_key, parse_key

FILE_NAME = "keyring"


class KeyfileError(ValueError):
    """A keyring file that cannot be read or holds something that is not a key; never shows a key."""


def read(path: str) -> Keyring:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise KeyfileError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    keys = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            keys.append(parse_key(text))
        except KeyringError as e:
            raise KeyfileError(f"{path}, line {number}: {e}") from None
    if not keys:
        raise KeyfileError(f"{path} holds no key (gossipdht keygen prints one)")
    return Keyring(keys)


def write(path: str, keyring: Keyring) -> None:
    """Replace the file at once (a crash leaves the old one or the new one), readable by its owner only."""
    temporary = path + ".new"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
        f.write("# gossipdht keyring: the primary key first; rotated with gossipdht keyring\n")
        f.write("".join(encode_key(key) + "\n" for key in keyring.keys))
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def in_force(data_dir: str, bootstrap: Optional[str]) -> tuple[Optional[Keyring], str]:
    """The keyring a node starts with and a line saying where it came from: the one saved
    in ``data_dir`` if there is one, else the ``bootstrap`` file (then saved), else none."""
    saved = os.path.join(data_dir, FILE_NAME)
    if os.path.exists(saved):
        keyring = read(saved)
        note = ""
        if bootstrap is not None:
            same = read(bootstrap).keys == keyring.keys
            note = (f"; --keyring {bootstrap} only bootstrapped it and "
                    + ("holds the same keys" if same else "differs from it: rotations since then are kept here"))
        return keyring, f"from {saved}{note}"
    if bootstrap is None:
        return None, ""
    keyring = read(bootstrap)
    os.makedirs(data_dir, exist_ok=True)
    write(saved, keyring)
    return keyring, f"from --keyring {bootstrap}, saved to {saved} (rotations are kept there)"
