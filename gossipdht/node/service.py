"""A node, assembled: storage, coordinator and the HTTP API under one service."""

from __future__ import annotations

import os
import resource
import socket
from dataclasses import asdict

from twisted.application.internet import TimerService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IStreamClientEndpoint, IStreamServerEndpoint
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.logger import ILogObserver, Logger, jsonFileLogObserver
from twisted.python.failure import Failure

import gossipdht
from gossipdht.core.address import Address
from gossipdht.core.admission import FD_HEADROOM, connection_limits
from gossipdht.core.hlc import HybridLogicalClock
from gossipdht.core.keyring import describe
from gossipdht.core.ring import Ring
from gossipdht.core.sealing import Sealing
from gossipdht.data.committer import GroupCommitter
from gossipdht.data.coordinator import Coordinator
from gossipdht.data.hints import HintedHandoff
from gossipdht.data.rebalance import Rebalancer
from gossipdht.data.replica import LocalReplica, Replicas
from gossipdht.data.stats import DataStats
from gossipdht.membership.member import SwimConfig
from gossipdht.net.cluster import Cluster, ClusterError
from gossipdht.net.keyrings import KeyringManager
from gossipdht.net.peer import PeerClient
from gossipdht.net.remotereplica import RemoteReplica
from gossipdht.net.rpc import RpcClient, max_frame_bytes, tcp_endpoint
from gossipdht.net.settlement import Settlement
from gossipdht.node import keyfile
from gossipdht.node.config import ConfigError, NodeConfig, read_api_tokens
from gossipdht.node.reactorlag import ReactorLag
from gossipdht.node.snapshot import Snapshot
from gossipdht.storage import open_store
from gossipdht.web.api import RestAPI
from gossipdht.web.limits import LimitedFactory, Limits

#: How long ``POST /dht/join``, ``/dht/leave`` and ``/dht/remove`` wait for data to move
#: before they answer 504.
DATA_MOVE_SECONDS = 300.0
#: How often a thread copies the store's write-ahead log into the database.
CHECKPOINT_SECONDS = 0.5
#: Start-up joins retry with exponential backoff, up to this many seconds apart.
MAX_JOIN_BACKOFF = 30.0
#: Datagrams read from the gossip port in one reactor turn, at most (see ``privilegedStartService``).
GOSSIP_READ_BYTES = 4 << 10


class StartupError(SystemExit):
    """Ends start-up with one line on stderr and exit status 1, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"gossipdht: {message}")


class Part(Service):
    """A part of the node with its own timers (``start`` and ``stop``), as a child service."""

    def __init__(self, part) -> None:
        self.part = part

    def startService(self) -> None:
        super().startService()
        self.part.start()

    def stopService(self) -> None:
        super().stopService()
        self.part.stop()


class NodeService(MultiService):
    """One node: its parts as child services, its listening endpoints and gossip port."""

    log = Logger()

    def __init__(self, config: NodeConfig, reactor=None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self._reactor = reactor
        # Before anything is made on disk: a bad endpoint string or TLS file is an option error.
        try:
            self.tls = config.tls()
        except ConfigError as e:
            raise StartupError(str(e)) from None
        self._endpoints = [(description, self._endpoint(description)) for description in config.endpoints()]
        try:  # read once more: the file was checked with the configuration, and may have changed since
            self.tokens = None if config.api_tokens is None else read_api_tokens(config.api_tokens)
        except ConfigError as e:
            raise StartupError(str(e)) from None
        #: Whether calls to other nodes go over TLS: decided once the node listens, as
        #: they are made the way others reach this node (see ``privilegedStartService``).
        self.internal_tls = False
        try:
            self.store = open_store(config.storage, config.data_dir, config.sync)
        except Exception as e:
            raise StartupError(f"--data-dir: cannot open storage in {config.data_dir}: {e}") from None
        self.committer = GroupCommitter(self.store, reactor, deferToThread)
        try:
            keyring, self._keyring_origin = keyfile.in_force(config.data_dir, config.keyring)
        except (keyfile.KeyfileError, OSError) as e:
            raise StartupError(f"--keyring: {e}") from None
        self.sealing = Sealing(keyring, config.cluster_name, config.gossip_verify_incoming,
                               config.gossip_verify_outgoing)
        self.rpc = RpcClient(reactor, max_frame_bytes(config.max_value_bytes), self.sealing, self._peer_endpoint)
        self.peers = PeerClient(self.rpc)
        try:
            advertised_ip = socket.getaddrinfo(config.advertise, None)[0][4][0]
        except OSError as e:
            raise StartupError(f"--advertise: cannot resolve {config.advertise}: {e}") from None
        self.cluster = Cluster(config.name, advertised_ip, config.gossip_port, config.port, reactor, self.peers,
                               SwimConfig(reap_after=config.reap_after), rebalance_delay=config.rebalance_delay,
                               max_clock_offset=config.max_clock_offset, sealing=self.sealing)
        self.stats = DataStats()
        clock = HybridLogicalClock(reactor.seconds, self.store.reserved_timestamp(), self.store.reserve_timestamp)
        local = LocalReplica(config.name, self.store, self.committer, clock, self.stats, deferToThread)
        self.replicas = Replicas(local, self.cluster.api_address,
                                 lambda name, address: RemoteReplica(name, address, self.rpc, reactor, deferToThread))
        # The ring and its members that are down are replaced on every change.
        ring = lambda: self.cluster.ring  # noqa: E731
        down = lambda: self.cluster.down  # noqa: E731
        self.settlement = Settlement(config.name, self.peers, reactor, lambda: self.rebalancer.transfers(),
                                     self.cluster.others, lambda: self.cluster.ring.checksum)
        self.rebalancer = Rebalancer(config.name, ring, down, self.replicas, config.replicas, reactor, self.stats,
                                     config.anti_entropy_interval, config.tombstone_grace, self.settlement.agreed)
        self.coordinator = Coordinator(config.name, ring, self.replicas, clock, config.replicas,
                                       config.read_quorum, config.write_quorum, self.stats, down,
                                       self.settlement.unsettled, lambda: self.cluster.clock_trouble,
                                       lambda: (self.settlement.generation, self.rebalancer.settled_rounds),
                                       isolated=lambda: self.cluster.refused_by_cluster)
        self.hints = HintedHandoff(ring, down, self.replicas, config.replicas, self.stats, reactor)
        self.cluster.on_ring_change.append(self.rebalancer.ring_changed)
        local.on_push = self.rebalancer.pushed
        self.cluster.data_moved = self._data_moved
        self.cluster.before_leave = self._hand_data_off
        self.lag = ReactorLag(reactor)
        self.lag.setServiceParent(self)
        self.fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        clients, reserve = connection_limits(self.fd_limit, config.max_connections)
        self.limits = Limits(reactor, clients, reserve, config.max_inflight_bytes, config.max_requests_in_progress,
                             config.header_timeout, config.body_timeout, config.min_body_rate)
        self.keyrings = KeyringManager(config.name, self.sealing, self._save_keyring, self.peers, self.cluster.others)
        self.api = api = RestAPI(self.coordinator, self.cluster, local, self._data_stats, config.max_value_bytes,
                      config.replicas, self.settlement, self.keyrings, self.peers, self.lag.stats,
                      # With mutual TLS a call from another node shows a certificate of the cluster's CA.
                      self.tls.admit if self.tls.mutual else None, config.metrics, self.limits)
        self.site = api.site(self.tokens)
        self.snapshot = None
        if config.storage == "sqlite":  # a durable node remembers its cluster
            self.snapshot = Snapshot(os.path.join(config.data_dir, "members.json"), self._other_members, reactor)
            self.cluster.on_change.append(self.snapshot.changed)
        #: The API's listening ports, one for each ``--listen``.
        self.ports: list[IListeningPort] = []
        self.udp = None
        self._joining: Deferred | None = None
        # Started in this order, stopped in the reverse one, by MultiService.
        for part in (self.cluster, self.rebalancer, self.settlement, self.hints):
            Part(part).setServiceParent(self)
        if self.store.threaded:
            self.checkpoints = TimerService(CHECKPOINT_SECONDS, self._checkpoint)
            self.checkpoints.clock = reactor
            # Stopping waits for a checkpoint in progress: the store must not close under it.
            self.checkpoints.setServiceParent(self)

    def setServiceParent(self, parent) -> None:
        # twistd starts logging after it built the application: a log observer set as
        # the application's component is the one it uses (as in a .tac file).
        if self.config.log_format == "json" and hasattr(parent, "setComponent"):
            import sys

            parent.setComponent(ILogObserver, jsonFileLogObserver(sys.stdout))
        super().setServiceParent(parent)

    def privilegedStartService(self) -> None:
        # Before privileges are dropped: an endpoint may name a port below 1024.
        for description, endpoint in self._endpoints:
            self.ports.append(self._listen(description, endpoint))
        # Others reach the API at the first endpoint that has a port, and nodes speak
        # to each other as others speak to this one: TLS when that endpoint is ssl:.
        reached = [(endpoint, port) for (_, endpoint), port in zip(self._endpoints, self.ports)
                   if hasattr(port.getHost(), "port")]
        self.internal_tls = bool(reached) and isinstance(reached[0][0], SSL4ServerEndpoint)
        if self.config.tls_ca and not self.internal_tls:
            self._close_ports()
            raise StartupError("--tls-ca: nodes speak TLS to each other only when the first --listen endpoint "
                               "with a port is ssl:")
        try:
            self.udp = self._reactor.listenUDP(self.config.gossip_port, self.cluster.protocol,
                                               interface=self.config.bind)
        except CannotListenError as e:
            self._close_ports()
            raise StartupError(
                f"--gossip-port: cannot listen on UDP {Address(self.config.bind, self.config.gossip_port)}: "
                f"{e.socketError}"
            ) from None
        # A flood of datagrams (forged, garbage, sealed with another key) must not starve
        # the API: each reactor turn reads this much of it, and the kernel drops the rest,
        # which costs nothing here.  Gossip itself sends a few small datagrams a second.
        self.udp.maxThroughput = GOSSIP_READ_BYTES
        self.cluster.listening(self.udp.getHost().port, reached[0][1].getHost().port if reached else self.config.port)
        super().privilegedStartService()

    def _endpoint(self, description: str) -> IStreamServerEndpoint:
        try:
            endpoint = serverFromString(self._reactor, description)
        except IndexError:  # systemd:...:index=N beyond the sockets inherited
            raise StartupError(f"--listen: {description!r}: no such socket was passed by systemd "
                               "(LISTEN_FDS, LISTEN_FDNAMES)") from None
        except Exception as e:  # parsers raise ValueError, TypeError, OSError, OpenSSL errors...
            raise StartupError(f"--listen: {description!r}: {e or type(e).__name__}") from None
        if self.tls.mutual and isinstance(endpoint, SSL4ServerEndpoint):
            return self.tls.verifying_clients(endpoint)
        return endpoint

    def _peer_endpoint(self, host: str, port: int) -> IStreamClientEndpoint:
        """How a connection to another node's API is made."""
        if self.internal_tls:
            return self.tls.client_endpoint(self._reactor, host, port)
        return tcp_endpoint(self._reactor, host, port)

    def _listen(self, description: str, endpoint: IStreamServerEndpoint) -> IListeningPort:
        """The port listening, or StartupError; server endpoints listen at once (TCP, TLS,
        UNIX, systemd sockets), so the failure is known before the node starts."""
        started = endpoint.listen(LimitedFactory(self.site, self.limits))
        outcome: list = []
        started.addBoth(outcome.append)
        if not outcome:
            started.cancel()
            outcome = [Failure(CannotListenError(None, None, "the endpoint did not listen at once"))]
        if isinstance(outcome[0], Failure):
            self._close_ports()
            error = outcome[0].value
            option = "--listen" if self.config.listen else "--port"  # the option the user gave
            raise StartupError(f"{option}: cannot listen on {description}: {getattr(error, 'socketError', None) or error}")
        return outcome[0]

    def _close_ports(self) -> None:
        for port in self.ports:
            port.stopListening()
        self.ports = []

    def startService(self) -> None:
        super().startService()
        self.log.info("gossipdht {version} started: {config}", version=gossipdht.__version__,
                      config=self.config.describe())
        self.log.info("HTTP API on {addresses}, gossip on UDP {gossip}",
                      addresses=", ".join(_where(port.getHost()) for port in self.ports), gossip=_where(self.udp.getHost()))
        self._log_limits()
        self._log_sealing()
        if self.tokens is not None:
            self.log.info("HTTP requests need an API token ({counts}); GET /health and calls between nodes do not",
                          counts=", ".join(f"{n} {role}" for role, n in self.tokens.counts().items()))
        self.log.info("internal traffic between nodes: {how}", how=self.tls.describe() if self.internal_tls else
                      "plaintext, as the first --listen endpoint with a port is not ssl:")
        seeds = list(self.config.join)
        if not seeds and self.snapshot is not None:
            seeds = self.snapshot.seeds
            if seeds:
                self.log.info("rejoining the {count} members this node knew before it stopped", count=len(seeds))
        if seeds:
            self._joining = ensureDeferred(self._join_at_start(seeds))

    def _log_limits(self) -> None:
        slots = self.limits.slots
        self.log.info("open files limit {fds}: up to {clients} client connections (--max-connections), and "
                      "{reserve} more kept for calls between nodes", fds=self.fd_limit, clients=slots.limit,
                      reserve=slots.reserve)
        if slots.limit + slots.reserve + FD_HEADROOM > self.fd_limit:
            self.log.warn("--max-connections {clients} and the reserve of {reserve} do not fit in the open files "
                          "limit of {fds}: raise it (LimitNOFILE= in the systemd unit, ulimit -n)",
                          clients=slots.limit, reserve=slots.reserve, fds=self.fd_limit)

    def _log_sealing(self) -> None:
        sealing = self.sealing
        if sealing.keyring is None:
            self.log.warn("no gossip keyring (--keyring): gossip and calls between nodes are neither encrypted "
                          "nor authenticated; anyone who reaches this node's ports can join the cluster or change it")
            return
        modes = {(True, True): "sealed both ways", (True, False): "sealed when sent; plaintext accepted too "
                 "(--gossip-verify-incoming false)", (False, True): "received sealed only, yet sent in plaintext "
                 "(--gossip-verify-outgoing false)", (False, False): "keys installed, plaintext sent and accepted "
                 "(both --gossip-verify options false)"}
        self.log.info("gossip keyring in force: {keys}, {origin}; cluster name {cluster}; traffic {mode}",
                      keys=describe(sealing.keyring), origin=self._keyring_origin,
                      cluster=repr(sealing.cluster), mode=modes[sealing.seals, sealing.requires])

    def _save_keyring(self, keyring) -> None:
        keyfile.write(os.path.join(self.config.data_dir, keyfile.FILE_NAME), keyring)

    async def _data_moved(self, members, checksum, down) -> None:
        pending = await self.settlement.wait(members, checksum, down, DATA_MOVE_SECONDS)
        if pending:
            raise ClusterError(504, "membership changed, but data is still to move; it goes on in the "
                               "background: " + "; ".join(pending))

    async def _hand_data_off(self, others: list[str]) -> None:
        if not await self.rebalancer.hand_off(Ring(others)):
            raise ClusterError(503, "could not hand this node's data to the other members; still a member")

    def _data_stats(self) -> dict:
        live, tombstones = self.store.counts()
        return {**asdict(self.stats), "keys_held": live, "tombstones_held": tombstones,
                "hints_pending": self.hints.pending()}

    def _other_members(self):
        return [(m.name, Address(m.host, m.api_port)) for m in self.cluster.rejoinable()]

    async def _join_at_start(self, seeds: list[Address]) -> None:
        """Join through the seeds, retrying with backoff until one answers."""
        delay = 0.5
        while self.running:
            try:
                message = await self.cluster.join(seeds)
            except ClusterError as e:
                if e.code == 403:  # its keyring (or certificate) is not the cluster's: not a cluster of its own
                    self.cluster.refused_by_cluster = (
                        f"this node serves no data: the cluster it rejoins refused it ({e}); give it the "
                        "cluster's current key with gossipdht keyring install and use (or, refused for TLS, "
                        "a certificate of the cluster's CA), then it rejoins")
                    self.log.error("{why}", why=self.cluster.refused_by_cluster)
                self.log.warn("join through {seeds} failed ({error}); retrying in {delay:.1f} s",
                              seeds=", ".join(map(str, seeds)), error=e, delay=delay)
                await deferLater(self._reactor, delay, lambda: None)
                delay = min(delay * 2, MAX_JOIN_BACKOFF)
            else:
                self.cluster.refused_by_cluster = None
                self.log.info("{message}", message=message)
                return

    def _checkpoint(self) -> Deferred[None]:
        """The store's checkpoint, in a thread; a failure is logged and the next one tried."""
        def failed(failure: Failure) -> None:
            self.log.failure("storage checkpoint failed", failure)

        return deferToThread(self.store.checkpoint).addErrback(failed)

    def stopService(self) -> Deferred[None]:
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        if self._joining is not None:
            self._joining.cancel()
        await super().stopService()
        self.limits.stop()
        if self.udp is not None:
            await self.udp.stopListening()
        for port in self.ports:
            await port.stopListening()
        self.api.rpc.close()
        self.rpc.close()
        if self.snapshot is not None:
            self.snapshot.write()
        await self.committer.drain()
        self.store.close()


def _where(address) -> str:
    """``host:port`` of a TCP or UDP address, the path of a UNIX one."""
    if hasattr(address, "port"):
        return str(Address(address.host, address.port))
    return str(getattr(address, "name", address))
