"""A node's configuration: defaults, the TOML config file, and validation.

Every setting has one name, used both as the long command-line option and as the
key in the config file (``data-dir = "/var/lib/gossipdht/a"``).  Command-line values
win over the file; the file wins over defaults.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from gossipdht.core.address import Address, AddressError, parse_address
from gossipdht.net.tls import NodeTLS, TLSFileError
from gossipdht.node import keyfile
from gossipdht.storage import ENGINES, SYNC_MODES
from gossipdht.web.tokens import BadTokens, Tokens, parse

LOG_FORMATS = ("text", "json")
MAX_NAME_LENGTH = 255


class ConfigError(ValueError):
    """A setting is wrong; the message names it and fits on one line."""


@dataclass(frozen=True)
class NodeConfig:
    """Every setting of a node, validated."""

    name: str
    port: int
    gossip_port: int
    bind: str
    advertise: str
    data_dir: str
    storage: str
    replicas: int
    read_quorum: int
    write_quorum: int
    max_value_bytes: int
    log_format: str
    reap_after: float = 300.0
    anti_entropy_interval: float = 30.0
    tombstone_grace: float = 86400.0
    rebalance_delay: float = 60.0
    max_clock_offset: float = 0.5
    join: tuple[Address, ...] = field(default=())
    #: Endpoint strings the HTTP API listens on (``tcp:8080:interface=127.0.0.1``,
    #: ``ssl:8443:privateKey=key.pem:certKey=cert.pem``, ``systemd:domain=INET:index=0``);
    #: none given: ``port`` on ``bind`` (see ``endpoints``).
    listen: tuple[str, ...] = field(default=())
    #: The keyring file that bootstraps gossip encryption (None: no encryption).
    keyring: Optional[str] = None
    #: Bound to every sealed message: clusters of other names never take each other's.
    cluster_name: str = ""
    gossip_verify_incoming: bool = True
    gossip_verify_outgoing: bool = True
    #: The file of ``ROLE TOKEN`` lines the HTTP API asks tokens of; None: no tokens.
    api_tokens: Optional[str] = None
    #: PEM files: the CA that signed the nodes' certificates (TLS between nodes trusts
    #: the platform's CAs without it), and this node's client certificate and key for
    #: mutual TLS.  Used when the API endpoint others reach is ``ssl:``.
    tls_ca: Optional[str] = None
    tls_client_cert: Optional[str] = None
    tls_client_key: Optional[str] = None
    #: ``GET /metrics``, and the request counters and latencies it shows; off only to
    #: measure what they cost (``python -m gossipdht.tools.bench --metrics``).
    metrics: bool = True
    #: ``normal``: commits survive a crash of the process; ``full``: a power loss too.
    sync: str = "normal"
    #: Client connections held at once; None: derived from the open-files limit
    #: (``admission.connection_limits``).
    max_connections: Optional[int] = None
    #: Bytes of request bodies being received or held, on the whole node.
    max_inflight_bytes: int = 256 << 20
    #: Requests in progress at once, past which requests are answered 503.
    max_requests_in_progress: int = 128
    #: Seconds for a request's line and headers; for its body, plus one a ``min_body_rate`` bytes.
    header_timeout: int = 10
    body_timeout: int = 10
    min_body_rate: int = 32 << 10

    def endpoints(self) -> tuple[str, ...]:
        """What the HTTP API listens on: ``--listen``, else TCP on ``--port`` and ``--bind``."""
        return self.listen or (default_endpoint(self.port, self.bind),)

    def tls(self) -> NodeTLS:
        """The ``NodeTLS`` of the ``--tls-*`` files, or ConfigError naming the option
        whose file cannot be used."""
        try:
            return NodeTLS.from_files(self.tls_ca, self.tls_client_cert, self.tls_client_key)
        except TLSFileError as e:
            raise ConfigError(f"--tls-{e.argument.replace('_', '-')}: {e}") from None

    def describe(self) -> str:
        """The effective configuration, on one line, for the start-up log."""
        seeds = ",".join(map(str, self.join)) or "none"
        return (
            f"name={self.name} listen={','.join(self.endpoints())} gossip-udp={Address(self.bind, self.gossip_port)} "
            f"advertise={self.advertise} "
            f"storage={self.storage} sync={self.sync} data-dir={self.data_dir} replicas={self.replicas} "
            f"read-quorum={self.read_quorum} write-quorum={self.write_quorum} "
            f"max-value-bytes={self.max_value_bytes} reap-after={self.reap_after:g} "
            f"anti-entropy-interval={self.anti_entropy_interval:g} tombstone-grace={self.tombstone_grace:g} "
            f"rebalance-delay={self.rebalance_delay:g} max-clock-offset={self.max_clock_offset * 1000:g} "
            f"join={seeds} api-tokens={self.api_tokens or 'none'} keyring={self.keyring or 'none'} "
            f"cluster-name={self.cluster_name or '(none)'} "
            f"gossip-verify-incoming={_yes(self.gossip_verify_incoming)} "
            f"gossip-verify-outgoing={_yes(self.gossip_verify_outgoing)} "
            f"tls-ca={self.tls_ca or 'none'} tls-client-cert={self.tls_client_cert or 'none'} "
            f"metrics={_yes(self.metrics)} log-format={self.log_format} "
            f"max-connections={self.max_connections or 'derived'} max-inflight-bytes={self.max_inflight_bytes} "
            f"max-requests-in-progress={self.max_requests_in_progress} header-timeout={self.header_timeout} "
            f"body-timeout={self.body_timeout} min-body-rate={self.min_body_rate}"
        )


SETTINGS = (
    "name", "listen", "port", "gossip-port", "bind", "advertise", "join", "data-dir", "storage", "sync", "replicas",
    "read-quorum", "write-quorum", "max-value-bytes", "log-format", "reap-after",
    "anti-entropy-interval", "tombstone-grace", "rebalance-delay",
    "max-clock-offset", "api-tokens", "keyring", "cluster-name", "gossip-verify-incoming",
    "gossip-verify-outgoing", "tls-ca", "tls-client-cert", "tls-client-key", "metrics",
    "max-connections", "max-inflight-bytes", "max-requests-in-progress", "header-timeout", "body-timeout",
    "min-body-rate",
)
DEFAULTS: Mapping[str, Any] = {
    "port": 8080,
    "bind": "127.0.0.1",
    "storage": "sqlite",
    "sync": "normal",
    "replicas": 3,
    "max-value-bytes": 1 << 20,
    "log-format": "text",
    "reap-after": 300,
    "anti-entropy-interval": 30,
    "tombstone-grace": 86400,
    "rebalance-delay": 60,
    "max-clock-offset": 500,
    "join": [],
    "listen": [],
    "cluster-name": "",
    "gossip-verify-incoming": True,
    "gossip-verify-outgoing": True,
    "metrics": True,
    "max-inflight-bytes": 256 << 20,
    "max-requests-in-progress": 128,
    "header-timeout": 10,
    "body-timeout": 10,
    "min-body-rate": 32 << 10,
}


def read_config_file(path: str) -> dict[str, Any]:
    """The settings in a TOML file; unknown keys are refused so that typos show."""
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"--config: cannot read {path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config: {path} is not valid TOML: {e}") from None
    for key in values:
        if key not in SETTINGS:
            raise ConfigError(f"--config: {path}: unknown setting {key!r}")
    return values


def build_config(
    command_line: Mapping[str, Any], config_file: Optional[Mapping[str, Any]] = None
) -> NodeConfig:
    """Merge command line (values that are None were not given), file and defaults."""
    merged = dict(DEFAULTS)
    merged.update(config_file or {})
    merged.update({k: v for k, v in command_line.items() if v is not None and v != []})

    port = _integer(merged, "port", 1, 65535)
    bind = _ip_address(merged["bind"], "bind")
    advertise = str(merged.get("advertise") or bind)
    if not advertise or _is_unspecified(advertise):
        raise ConfigError(
            f"--advertise: {advertise or 'an empty address'} cannot be reached by other nodes; "
            "give the address they should use"
        )
    name = str(merged.get("name") or Address(advertise, port))
    if len(name.encode()) > MAX_NAME_LENGTH or not name.isprintable() or " " in name:
        raise ConfigError(f"--name: {name!r} must be 1 to {MAX_NAME_LENGTH} printable bytes, no spaces")
    storage = str(merged["storage"])
    if storage not in ENGINES:
        raise ConfigError(f"--storage: {storage!r} is not one of {', '.join(ENGINES)}")
    sync = str(merged["sync"])
    if sync not in SYNC_MODES:
        raise ConfigError(f"--sync: {sync!r} is not one of {', '.join(SYNC_MODES)}")
    if sync == "full" and storage == "memory":
        raise ConfigError("--sync: full needs --storage sqlite; the memory engine keeps nothing on disk")
    replicas = _integer(merged, "replicas", 1, 64)
    majority = replicas // 2 + 1
    read_quorum = _integer(merged, "read-quorum", 1, replicas, majority)
    write_quorum = _integer(merged, "write-quorum", 1, replicas, majority)
    log_format = str(merged["log-format"])
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"--log-format: {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    join = merged["join"]
    if isinstance(join, str):
        join = [join]
    if not isinstance(join, (list, tuple)):
        raise ConfigError(f"--join: {join!r} is not a list of HOST:PORT")
    reap_after = _integer(merged, "reap-after", 1, 30 * 86400)
    # A dead member that was reaped is forgotten, and so off the ring, whatever the delay.
    rebalance_delay = _integer(merged, "rebalance-delay", 0, reap_after)
    listen = merged["listen"]
    if isinstance(listen, str):
        listen = [listen]
    if not isinstance(listen, (list, tuple)) or not all(isinstance(d, str) and d for d in listen):
        raise ConfigError(f"--listen: {listen!r} is not a list of endpoint strings")
    keyring = merged.get("keyring")
    if keyring is not None:
        keyring = str(keyring)
        try:
            keyfile.read(keyring)
        except keyfile.KeyfileError as e:
            raise ConfigError(f"--keyring: {e}") from None
    cluster_name = str(merged["cluster-name"])
    if len(cluster_name.encode()) > MAX_NAME_LENGTH or not cluster_name.isprintable():
        raise ConfigError(f"--cluster-name: {cluster_name!r} must be up to {MAX_NAME_LENGTH} printable bytes")
    try:
        seeds = tuple(parse_address(seed, "join") for seed in join)
    except AddressError as e:
        raise ConfigError(str(e)) from None
    api_tokens = merged.get("api-tokens") or None
    if api_tokens is not None:
        read_api_tokens(str(api_tokens))  # a bad file is an option error, before start-up
    tls_ca, tls_client_cert, tls_client_key = (
        str(merged[setting]) if merged.get(setting) else None for setting in ("tls-ca", "tls-client-cert", "tls-client-key"))
    if (tls_client_cert is None) != (tls_client_key is None):
        given, missing = ("cert", "key") if tls_client_key is None else ("key", "cert")
        raise ConfigError(f"--tls-client-{given}: mutual TLS needs --tls-client-{missing} too")
    if tls_client_cert is not None and tls_ca is None:
        raise ConfigError("--tls-client-cert: mutual TLS needs --tls-ca, the CA that signed the nodes' certificates")
    config = NodeConfig(
        name=name,
        port=port,
        gossip_port=_integer(merged, "gossip-port", 1, 65535, port),
        bind=bind,
        advertise=advertise,
        data_dir=str(merged.get("data-dir") or os.path.join("gossipdht-data", name)),
        storage=storage,
        sync=sync,
        replicas=replicas,
        read_quorum=read_quorum,
        write_quorum=write_quorum,
        max_value_bytes=_integer(merged, "max-value-bytes", 1, 1 << 30),
        log_format=log_format,
        reap_after=reap_after,
        anti_entropy_interval=_integer(merged, "anti-entropy-interval", 1, 86400),
        tombstone_grace=_integer(merged, "tombstone-grace", 1, 365 * 86400),
        rebalance_delay=rebalance_delay,
        max_clock_offset=_integer(merged, "max-clock-offset", 1, 86_400_000) / 1000,
        join=seeds,
        listen=tuple(listen),
        keyring=keyring,
        cluster_name=cluster_name,
        gossip_verify_incoming=_boolean(merged, "gossip-verify-incoming"),
        gossip_verify_outgoing=_boolean(merged, "gossip-verify-outgoing"),
        api_tokens=None if api_tokens is None else str(api_tokens),
        tls_ca=tls_ca,
        tls_client_cert=tls_client_cert,
        tls_client_key=tls_client_key,
        metrics=_boolean(merged, "metrics"),
        max_connections=None if merged.get("max-connections") is None
        else _integer(merged, "max-connections", 1, 1 << 24),
        max_inflight_bytes=_integer(merged, "max-inflight-bytes", 1 << 10, 1 << 40),
        max_requests_in_progress=_integer(merged, "max-requests-in-progress", 1, 1 << 20),
        header_timeout=_integer(merged, "header-timeout", 1, 3600),
        body_timeout=_integer(merged, "body-timeout", 1, 3600),
        min_body_rate=_integer(merged, "min-body-rate", 1, 1 << 30),
    )
    config.tls()  # the files are read and parsed now, so that a bad one is an option error
    return config


def read_api_tokens(path: str) -> Tokens:
    """The tokens of the ``--api-tokens`` file; the ConfigError names the file and line,
    never a token."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"--api-tokens: cannot read {path}: {e.strerror}") from None
    try:
        return parse(data)
    except BadTokens as e:
        raise ConfigError(f"--api-tokens: {path}: {e}") from None


#: Connections the kernel queues for the API before the node accepts them (Twisted's default
#: is 50): under a flood, attempts past the queue were dropped, and a dropped attempt waits a
#: second before it is tried again.  The kernel caps it at ``net.core.somaxconn``.
LISTEN_BACKLOG = 1024


def default_endpoint(port: int, bind: str) -> str:
    """The endpoint string of ``--port`` and ``--bind``: TCP on that interface."""
    interface = bind.replace(":", "\\:")  # a colon separates the endpoint's arguments
    return f"tcp:{port}:interface={interface}:backlog={LISTEN_BACKLOG}"


def _integer(values: Mapping[str, Any], setting: str, low: int, high: int, default: Optional[int] = None) -> int:
    raw = values.get(setting, default)
    if raw is None:
        raw = default
    try:
        number = int(raw)
        if isinstance(raw, float) or str(raw).strip() != str(number):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"--{setting}: {raw!r} is not a whole number") from None
    if not low <= number <= high:
        raise ConfigError(f"--{setting}: {number} is outside {low}..{high}")
    return number


def _boolean(values: Mapping[str, Any], setting: str) -> bool:
    raw = values[setting]
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ConfigError(f"--{setting}: {raw!r} is not true or false")


def _yes(value: bool) -> str:
    return "true" if value else "false"


def _ip_address(text: Any, setting: str) -> str:
    try:
        return str(ipaddress.ip_address(str(text)))
    except ValueError:
        raise ConfigError(f"--{setting}: {text!r} is not an IP address") from None


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
