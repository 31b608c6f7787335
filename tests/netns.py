"""Hosts of their own on one machine: network namespaces linked to a router namespace.

Host ``i`` (from 1) is the namespace ``gdht-i`` with the address ``10.231.i.2`` on its
``eth0``, the far end of a veth pair whose near end, ``h<i>``, sits in the router
namespace ``gdht-router`` as ``10.231.i.1``.  The test process reaches every host
through one more veth pair, ``gdht-client`` (``10.231.250.2``) in this namespace, so it
can talk to both sides of a split, as a client on each side would.  Faults are made in
the router only:

- ``cut(i)`` takes host i's link down: nothing reaches it or leaves it;
- ``split(group, group, ...)`` adds ``blackhole`` rules for the traffic between the
  groups, which is dropped without a word, as a real partition drops it;
- ``heal()`` takes the rules away again.

Everything is torn down on ``close()`` (the context manager's exit), and on entry too if
an earlier run left it behind.  Only the addresses made here are ever used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional, Sequence

PREFIX = "gdht"
ROUTER = f"{PREFIX}-router"
CLIENT_LINK = f"{PREFIX}-client"
NET = "10.231"


def unavailable() -> Optional[str]:
    """Why network namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "needs iproute2's ip command"
    if os.geteuid() != 0:
        return "needs root for ip netns"
    probe = f"{PREFIX}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns is not permitted here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class Network:
    """``count`` hosts in network namespaces behind one router, with links to cut and
    groups to split."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._rules: list[tuple[str, str]] = []

    def host(self, i: int) -> str:
        return f"{PREFIX}-{i}"

    def address(self, i: int) -> str:
        return f"{NET}.{i}.2"

    def prefix(self, i: int) -> list[str]:
        """The command prefix that runs a program on host ``i``."""
        return ["ip", "netns", "exec", self.host(i)]

    def __enter__(self) -> "Network":
        self.close()
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _make(self) -> None:
        _ip("netns", "add", ROUTER)
        _ip("-n", ROUTER, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        for i in range(1, self.count + 1):
            host = self.host(i)
            _ip("netns", "add", host)
            _ip("link", "add", f"h{i}", "netns", ROUTER, "type", "veth", "peer", "name", "eth0", "netns", host)
            _ip("-n", ROUTER, "addr", "add", f"{NET}.{i}.1/24", "dev", f"h{i}")
            _ip("-n", ROUTER, "link", "set", f"h{i}", "up")
            _ip("-n", host, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _ip("-n", host, "link", "set", "eth0", "up")
            _ip("-n", host, "link", "set", "lo", "up")
            _ip("-n", host, "route", "add", "default", "via", f"{NET}.{i}.1")
        _ip("link", "add", CLIENT_LINK, "type", "veth", "peer", "name", "client", "netns", ROUTER)
        _ip("addr", "add", f"{NET}.250.2/24", "dev", CLIENT_LINK)
        _ip("link", "set", CLIENT_LINK, "up")
        _ip("-n", ROUTER, "addr", "add", f"{NET}.250.1/24", "dev", "client")
        _ip("-n", ROUTER, "link", "set", "client", "up")
        _ip("route", "add", f"{NET}.0.0/16", "via", f"{NET}.250.1", "dev", CLIENT_LINK)

    def close(self) -> None:
        # The near end first: the kernel tears a namespace's links down only later.
        _ip("link", "del", CLIENT_LINK, check=False)
        for i in range(1, self.count + 1):
            _ip("netns", "del", self.host(i), check=False)
        _ip("netns", "del", ROUTER, check=False)
        self._rules = []

    # -- faults ------------------------------------------------------------------------

    def cut(self, i: int) -> None:
        _ip("-n", ROUTER, "link", "set", f"h{i}", "down")

    def mend(self, i: int) -> None:
        _ip("-n", ROUTER, "link", "set", f"h{i}", "up")

    def split(self, *groups: Sequence[int]) -> None:
        """Drop all traffic between hosts of different groups; the client still reaches all."""
        for a, side in enumerate(groups):
            for other in groups[a + 1:]:
                for i in side:
                    for j in other:
                        for rule in ((f"{NET}.{i}.0/24", f"{NET}.{j}.0/24"), (f"{NET}.{j}.0/24", f"{NET}.{i}.0/24")):
                            _ip("-n", ROUTER, "rule", "add", "from", rule[0], "to", rule[1], "blackhole")
                            self._rules.append(rule)

    def heal(self) -> None:
        for source, destination in self._rules:
            _ip("-n", ROUTER, "rule", "del", "from", source, "to", destination, "blackhole")
        self._rules = []
