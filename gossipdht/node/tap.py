"""``twistd gossipdht``: command-line options and the service they make."""

from __future__ import annotations

import gc
import resource

from twisted.python import usage

from gossipdht.node.config import ConfigError, build_config, read_config_file
from gossipdht.node.service import NodeService, StartupError


class Options(usage.Options):
    """The options of ``twistd gossipdht``."""

    synopsis = "[options]"
    longdesc = "Run one gossipdht node: a distributed hash table over RESTful HTTP."

    # Defaults are None here so that a value from --config can tell it was not given.
    optParameters = [
        ["config", "c", None, "TOML file with settings (same names as these options)"],
        ["name", None, None, "node name, unique in a cluster [default: ADVERTISE:PORT]"],
        ["port", "p", None, "TCP port of the HTTP API, a shorthand for --listen tcp:PORT:interface=BIND [default: 8080]"],
        ["gossip-port", None, None, "UDP port for gossip [default: PORT]"],
        ["bind", None, None, "interface to listen on [default: 127.0.0.1]"],
        ["advertise", None, None, "address other nodes use to reach this one [default: BIND]"],
        ["data-dir", "d", None, "where this node keeps its data [default: ./gossipdht-data/NAME]"],
        ["storage", None, None, "storage engine: sqlite (durable) or memory [default: sqlite]"],
        ["sync", None, None, "normal: a commit survives a crash of the process; full: a power loss too, "
         "with an fsync in each commit [default: normal]"],
        ["replicas", "N", None, "copies of each key [default: 3]"],
        ["read-quorum", "R", None, "replicas that answer a read [default: majority]"],
        ["write-quorum", "W", None, "replicas that acknowledge a write [default: majority]"],
        ["max-value-bytes", None, None, "largest value accepted [default: 1048576]"],
        ["log-format", None, None, "text or json [default: text]"],
        ["reap-after", None, None, "seconds before dead and left members are forgotten [default: 300]"],
        ["anti-entropy-interval", None, None, "seconds between anti-entropy rounds [default: 30]"],
        ["tombstone-grace", None, None, "seconds a deletion is remembered before purging [default: 86400]"],
        ["rebalance-delay", None, None,
         "seconds a failed member keeps its place on the ring before its data moves [default: 60]"],
        ["max-clock-offset", None, None,
         "milliseconds this node's clock may be off most others' before it stops coordinating writes "
         "[default: 500]"],
        ["keyring", None, None,
         "file of base64 gossip keys, the primary first, that bootstraps encryption; the node keeps its "
         "keyring in --data-dir from then on [default: none: plaintext]"],
        ["cluster-name", None, None, "bound to every sealed message: clusters of other names never take "
         "each other's [default: none]"],
        ["gossip-verify-incoming", None, None, "false also accepts plaintext, while encryption is rolled "
         "out [default: true]"],
        ["gossip-verify-outgoing", None, None, "false still sends plaintext, while encryption is rolled "
         "out [default: true]"],
        ["api-tokens", None, None,
         "file of ROLE TOKEN lines (roles: read, write, admin); with it, HTTP requests need "
         "Authorization: Bearer TOKEN [default: none, no tokens needed]"],
        ["tls-ca", None, None,
         "PEM file of the CA that signed the nodes' certificates; nodes speak TLS to each other when the "
         "first --listen endpoint with a port is ssl: [default: the platform's CAs]"],
        ["tls-client-cert", None, None,
         "PEM client certificate (signed by the --tls-ca CA) this node shows to others: mutual TLS, "
         "internal calls without one are refused"],
        ["tls-client-key", None, None, "PEM private key of --tls-client-cert"],
        ["metrics", None, None, "false turns GET /metrics off, and with it the counting and timing of "
         "requests [default: true]"],
        ["max-connections", None, None, "client connections held at once; past it a new one is answered 503 "
         "and closed, save a reserve kept for calls between nodes [default: from the open-files limit]"],
        ["max-inflight-bytes", None, None, "bytes of request bodies received and held at once on the node; a "
         "body that would pass it is answered 503 before it is read; calls from other nodes have a budget of this "
         "size of their own [default: 268435456]"],
        ["max-requests-in-progress", None, None, "requests served at once; past it requests are answered 503 "
         "with Retry-After [default: 128]"],
        ["header-timeout", None, None, "seconds a request's line and headers may take; 408 past it [default: 10]"],
        ["body-timeout", None, None, "seconds a request body may take, plus one for each --min-body-rate bytes "
         "received; 408 past it [default: 10]"],
        ["min-body-rate", None, None, "bytes a second a request body must arrive at, over --body-timeout "
         "[default: 32768]"],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["join"] = []
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """endpoint the HTTP API listens on (repeatable): tcp:8080:interface=127.0.0.1, \
ssl:8443:privateKey=KEY:certKey=CERT, systemd:domain=INET:index=0 [default: tcp:PORT:interface=BIND]"""
        self["listen"].append(description)

    def opt_join(self, seed: str) -> None:
        """HOST:PORT of a node to join at start-up (repeatable)"""
        self["join"].append(seed)

    def postOptions(self) -> None:
        try:
            from_file = read_config_file(self["config"]) if self["config"] else {}
            self.node_config = build_config(
                {k: v for k, v in self.items() if k != "config"}, from_file
            )
        except ConfigError as e:
            raise StartupError(str(e)) from None


def makeService(options: Options) -> NodeService:
    from twisted.internet import reactor

    # What the node built to start (modules, classes, the service: about 56,000 objects)
    # lives as long as the process, yet each full collection of the cyclic garbage
    # collector walked it: 22-32 ms of stall here, every second or two under load.
    # Frozen, it is left out of collections.
    reactor.callWhenRunning(gc.freeze)
    raise_open_files_limit(reactor)
    return NodeService(options.node_config)


def raise_open_files_limit(reactor) -> None:
    """The soft limit of open files up to the hard one, as systemd.exec(5) asks of programs
    that need many: the soft limit stays low (1,024) for programs that use select(), which
    the node's reactor (epoll on Linux) does not."""
    if type(reactor).__name__ == "SelectReactor":
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

