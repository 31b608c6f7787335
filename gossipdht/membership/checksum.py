"""The checksum of a member list (as ringpop's): equal on nodes that agree on it."""

from __future__ import annotations

import zlib

from gossipdht.membership.member import LIVE, Member


class MemberChecksum:
    """Of the live members' names, addresses and incarnations: an XOR of one hash per
    member, so that each change updates it in O(1)."""

    def __init__(self) -> None:
        self.value = 0
        self._contributions: dict[str, int] = {}

    @property
    def live(self) -> int:
        """How many members are live (those with a contribution)."""
        return len(self._contributions)

    def touch(self, member: Member) -> None:
        """Account for a change of ``member``."""
        contribution = 0
        if member.state in LIVE:
            contribution = zlib.crc32(f"{member.name} {member.host} {member.port} {member.incarnation}".encode())
        self.value ^= self._contributions.pop(member.name, 0) ^ contribution
        if contribution:
            self._contributions[member.name] = contribution
