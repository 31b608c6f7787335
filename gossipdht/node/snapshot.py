"""The members a node last knew, kept on disk so that a restarted node rejoins them.

Like Serf's snapshot: written whenever the member list changes, at once and then at most
once a second (a node killed just after it joined still knows whom to rejoin),
so it follows graceful leaves too: a node that left holds an empty snapshot and a
restart keeps it alone.  Unlike Serf's, it keeps the dead members until they are reaped:
a node that lost touch with everyone (cut off, then restarted) still finds its way back.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from gossipdht.core.address import Address

DELAY_SECONDS = 1.0


def load(path: str) -> list[Address]:
    """The addresses in the snapshot; none if it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return [Address(str(m["host"]), int(m["port"])) for m in json.load(f)["members"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as e:
        Snapshot.log.warn("ignoring unreadable member snapshot {path}: {error}", path=path, error=e)
        return []


class Snapshot:
    """The other members, written to disk soon after each change."""

    log = Logger()

    def __init__(self, path: str, members, clock) -> None:
        """``members()`` gives (name, Address) of the other members when it is written."""
        self._path = path
        self._members = members
        self._clock = clock
        self._call: Optional[IDelayedCall] = None
        self._written = float("-inf")
        #: Whom the node knew when it stopped: its seeds at start.
        self.seeds = load(path)
        # Until the restarted node knows one of its members again, the file keeps them:
        # a node stopped (or killed) before it rejoined must not forget its cluster.
        self._keeping = bool(self.seeds)

    def changed(self) -> None:
        if self._call is not None:
            return
        wait = self._written + DELAY_SECONDS - self._clock.seconds()
        if wait > 0:
            self._call = self._clock.callLater(wait, self.write)
        else:
            self.write()

    def write(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        members = [{"name": name, "host": a.host, "port": a.port} for name, a in self._members()]
        if self._keeping and not members:
            return
        self._keeping = False
        self._written = self._clock.seconds()
        temporary = self._path + ".tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as f:
                json.dump({"members": members}, f)
            os.replace(temporary, self._path)
        except OSError as e:
            self.log.warn("cannot write the member snapshot {path}: {error}", path=self._path, error=e)
