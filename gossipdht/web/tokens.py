"""API tokens: the ``ROLE TOKEN`` file, the role a token holds, the role a request needs.

Pure functions of bytes: the site asks ``refusal`` for every request it serves.  Tokens
are compared as SHA-256 digests with ``hmac.compare_digest``, against every known token
whatever matched, so neither the time of a check nor an error message tells anything
about a token's text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import unquote_to_bytes

#: Each role may do what the roles before it may.
ROLES = ("read", "write", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
# RFC 6750's b64token: what a Bearer header can carry.
_TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
_BEARER = re.compile(rb"bearer +(\S+) *", re.IGNORECASE)
_SAFE_METHODS = (b"GET", b"HEAD")
#: Served without a token: every call between nodes, which a gossip keyring or mutual
#: TLS covers, not tokens.
INTERNAL_PATH = b"/internal/rpc"
#: Read without a token: the health check, and the dashboard's files (``/ui``, ``/ui/*``),
#: which hold no data: the page asks for a token when the endpoints it polls answer 401.
OPEN_PATHS = (b"/health", b"/ui")


class BadTokens(ValueError):
    """A tokens file that cannot be used; the message names the line, never a token."""


@dataclass(frozen=True)
class Refusal:
    """Why a request is not served: 401 (no known token) or 403 (a role too low)."""

    code: int
    message: str


@dataclass(frozen=True)
class Tokens:
    """The known tokens, as (digest, role) in the order of the file."""

    # Out of repr: no log line or traceback shows a token.
    entries: tuple[tuple[bytes, str], ...] = field(repr=False)

    def role_of(self, token: bytes) -> Optional[str]:
        """The role of ``token``, or None; every known token is compared, in constant time."""
        digest = _digest(token)
        role = None
        for known, known_role in self.entries:
            if hmac.compare_digest(known, digest):
                role = known_role
        return role

    def counts(self) -> dict[str, int]:
        """How many tokens each role has."""
        return {role: sum(1 for _, r in self.entries if r == role) for role in ROLES}


def parse(data: bytes) -> Tokens:
    """The tokens of a file's contents; BadTokens at the first bad line."""
    entries: list[tuple[bytes, str]] = []
    for number, raw in enumerate(data.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        fields = line.split()
        if len(fields) != 2 or not _TOKEN.fullmatch(fields[1]):
            raise BadTokens(f"line {number} is not ROLE TOKEN (a token is letters, digits and -._~+/=)")
        role = fields[0].decode("latin-1")
        if role not in _RANK:  # not named: it may be a token, the fields swapped
            raise BadTokens(f"line {number}: the role is not one of {', '.join(ROLES)}")
        digest = _digest(fields[1])
        if any(known == digest for known, _ in entries):
            raise BadTokens(f"line {number}: this token is on an earlier line already")
        entries.append((digest, role))
    if not entries:
        raise BadTokens("no tokens in the file")
    return Tokens(tuple(entries))


def needed(method: bytes, path: bytes) -> Optional[str]:
    """The role a request needs; None for paths open to all (``GET /health``, the dashboard's
    files, ``/internal/rpc``).

    ``path`` is the request's raw path: it is percent-decoded here as routing decodes it,
    so that ``/dh%74/join`` needs what ``/dht/join`` needs."""
    path = unquote_to_bytes(path.split(b"?", 1)[0])
    if path == INTERNAL_PATH or (method in _SAFE_METHODS and (path in OPEN_PATHS or path.startswith(b"/ui/"))):
        return None
    if path == b"/dht/leave" or ((path + b"/").startswith(b"/dht/") and method not in _SAFE_METHODS):
        return "admin"  # GET /dht/leave leaves
    return "read" if method in _SAFE_METHODS else "write"


def refusal(tokens: Tokens, method: bytes, path: bytes, authorization: list[bytes]) -> Optional[Refusal]:
    """Why the request is refused, given its ``Authorization`` headers; None to serve it."""
    need = needed(method, path)
    if need is None:
        return None
    bearer = _BEARER.fullmatch(authorization[0]) if len(authorization) == 1 else None
    if bearer is None:
        return Refusal(401, "this node needs an API token: send Authorization: Bearer TOKEN")
    role = tokens.role_of(bearer.group(1))
    if role is None:
        return Refusal(401, "unknown API token")
    if _RANK[role] < _RANK[need]:
        return Refusal(403, f"this request needs the {need} role; the token has the {role} role")
    return None


def _digest(token: bytes) -> bytes:
    # Digests have one length: compare_digest's time does not depend on the token's.
    return hashlib.sha256(token).digest()
