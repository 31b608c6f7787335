"""``GET /metrics``: a node's metrics in the Prometheus text format, through prometheus_client.

The node's counters stay where they are counted (``DataStats``, the membership core's
``Stats``, the cluster's and the RPC's refusals, the reactor-lag probe) and ``/dht/stats``
shows them; the collector here reads that same dictionary at each scrape and renames its
entries the Prometheus way, so the two never disagree and the pure cores know nothing
of Prometheus.  Only what ``/dht/stats`` does not have is kept here: requests served by
operation and status code, and their latency, observed by the API's resources and
counted here, read at each scrape; the same observations feed the rolling window of the
last minutes (``core.activity``) that ``GET /dht/activity`` and the dashboard show.

Each node has a registry of its own, not prometheus_client's global one, so several
nodes in one process (the tests) do not collide.  The exposition runs in the reactor
thread: prometheus_client's Twisted resource would scrape in a thread of the pool,
while the reactor changes the dictionaries it reads.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate
from time import perf_counter
from typing import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from twisted.web.iweb import IRequest

from gossipdht.core.activity import Activity
from gossipdht.membership.member import State
from gossipdht.net.rpc import REFUSALS

PREFIX = "gossipdht_"
#: The API's operations whose requests are counted and timed.
OPERATIONS = ("get", "put", "delete", "bulk_put", "other")
#: Single-key requests by method: HEAD is a GET without the body, POST a PUT of a form.
KEY_OPERATIONS = {b"GET": "get", b"HEAD": "get", b"PUT": "put", b"POST": "put", b"DELETE": "delete"}
#: Upper bounds of the latency buckets, in seconds: a local read takes a fraction of a
#: millisecond, a quorum write a few, a bulk write of thousands of keys up to seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# /dht/stats entries, by section, as (metric name without the prefix, help).  Counter
# names get ``_total`` from prometheus_client.
DATA_COUNTERS = {
    "writes_coordinated": ("writes_coordinated", "Writes this node coordinated."),
    "reads_coordinated": ("reads_coordinated", "Reads this node coordinated."),
    "writes_coordinated_as_non_owner": ("writes_coordinated_as_non_owner",
                                        "Writes this node coordinated without owning the key (a hop more)."),
    "reads_coordinated_as_non_owner": ("reads_coordinated_as_non_owner",
                                       "Reads this node coordinated without owning the key (a hop more)."),
    "quorum_failures": ("quorum_failures", "Reads and writes that did not reach their quorum."),
    "writes_refused_for_clock": ("writes_refused_for_clock", "Writes refused while this node's clock was off."),
    "writes_reissued": ("writes_reissued", "Writes reissued with a newer version than one a replica held."),
    "read_repairs": ("read_repairs", "Replicas sent a newer version by a read."),
    "hints_stored": ("hints_stored", "Records kept for a replica that was down (hinted handoff)."),
    "hints_delivered": ("hints_delivered", "Hinted records delivered to their replica."),
    "anti_entropy_exchanges": ("anti_entropy_exchanges", "Anti-entropy exchanges with another replica."),
    "anti_entropy_failures": ("anti_entropy_failures", "Anti-entropy exchanges that failed."),
    "keys_repaired": ("keys_repaired", "Keys anti-entropy repaired."),
    "keys_handed_off": ("keys_handed_off", "Records handed to their new owners by rebalancing or leaving."),
    "keys_dropped": ("keys_dropped", "Records this node no longer owns, dropped once handed off."),
    "tombstones_purged": ("tombstones_purged", "Tombstones forgotten after the grace period."),
    "rebalance_rounds": ("rebalance_rounds", "Rebalancing rounds run."),
}
DATA_GAUGES = {
    "keys_held": ("keys_held", "Live records held by this node."),
    "tombstones_held": ("tombstones_held", "Tombstones held by this node."),
    "hints_pending": ("hints_pending", "Hinted records waiting for their replica."),
}
GOSSIP_COUNTERS = {
    "datagrams_received": ("gossip_datagrams_received", "Gossip datagrams the membership core took."),
    "datagrams_sent": ("gossip_datagrams_sent", "Gossip datagrams sent."),
    "bytes_sent": ("gossip_sent_bytes", "Bytes of the gossip datagrams sent, as sealed."),
    "refutations": ("gossip_refutations", "Suspicions of this node it refuted."),
    "name_conflicts": ("gossip_name_conflicts", "Claims of a member's name from another address, refused."),
    "syncs": ("gossip_push_pulls", "Full state exchanges (push/pull) with another member."),
    "stalls_noticed": ("gossip_stalls_noticed", "Times this node noticed it had been stalled."),
    "incarnations_refused": ("gossip_incarnations_refused", "Updates whose incarnation jumped too far, refused."),
    "candidates_verified": ("gossip_candidates_verified", "Claimed members that answered a ping from their address."),
    "candidates_dropped": ("gossip_candidates_dropped", "Claimed members that did not answer in time."),
}
GOSSIP_GAUGES = {
    "local_health": ("gossip_health_score", "Lifeguard's local health score: 0 is healthy, higher stretches timeouts."),
    "candidates_pending": ("gossip_candidates_pending", "Claimed members waiting for their ping's answer."),
    "clock_offset_exceeded": ("clock_offset_exceeded", "1 while this node's clock is off most members' (no writes)."),
    "sealed": ("gossip_sealed", "1 when gossip and internal calls are sealed with a keyring."),
    "refused_by_cluster": ("refused_by_cluster", "1 while the cluster this node rejoins refuses it (no data served)."),
}
#: Datagrams refused by the membership core: not gossip, or messages it does not act on.
INVALID = "invalid"


class RequestMetrics:
    """Requests served by the API, by operation and status code, and their latency by
    operation: counted here as plain numbers, read when scraped.

    prometheus_client's own Counter and Histogram take a lock for each change and its
    child a lookup for each label set, and a ``notifyFinish`` Deferred a request costs as
    much again: 5.6 us a request against 0.2 us for these counts (``timeit``), on a path
    served in a few hundred microseconds.
    """

    def __init__(self, activity: Activity) -> None:
        self.activity = activity
        self._codes: dict[tuple[str, int], int] = {}
        # Per operation, requests by bucket (the last one past every bound), and their sum.
        self._buckets = {operation: [0] * (len(LATENCY_BUCKETS) + 1) for operation in OPERATIONS}
        self._seconds = dict.fromkeys(OPERATIONS, 0.0)

    def observe(self, operation: str, code: int, started: float) -> None:
        """A request of ``operation``, received whole at ``started`` (``perf_counter``), answered ``code`` now."""
        now = perf_counter()
        seconds = now - started
        key = (operation, code)
        self._codes[key] = self._codes.get(key, 0) + 1
        self._buckets[operation][bisect_left(LATENCY_BUCKETS, seconds)] += 1  # a bound is "at most"
        self._seconds[operation] += seconds
        self.activity.observe(operation, seconds, now)

    def watch(self, request: IRequest, operation: str) -> None:
        """Observe ``request`` when its answer is finished (not when the client went away),
        for the resources that do not observe their answers themselves."""
        started = perf_counter()
        request.notifyFinish().addCallbacks(
            lambda _: self.observe(operation, request.code, started), lambda _: None)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(PREFIX + "http_requests", "HTTP requests served, by operation and status code.",
                                       labels=["operation", "code"])
        for (operation, code), count in sorted(self._codes.items()):
            requests.add_metric([operation, str(code)], count)
        yield requests
        latency = HistogramMetricFamily(PREFIX + "http_request_duration_seconds",
                                        "Time from a request received whole to the end of its answer, by operation.",
                                        labels=["operation"])
        bounds = [floatToGoString(bound) for bound in LATENCY_BUCKETS] + ["+Inf"]
        for operation in OPERATIONS:
            latency.add_metric([operation], list(zip(bounds, accumulate(self._buckets[operation]))),
                               sum_value=self._seconds[operation])
        yield latency


class StatsCollector:
    """The counters of ``/dht/stats`` and the members by state, read when scraped."""

    def __init__(self, stats: Callable[[], dict], members: Callable[[], list[dict]]) -> None:
        self._stats = stats
        self._members = members

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        data, gossip = stats["data"], stats["gossip"]
        yield from _families(data, DATA_COUNTERS, CounterMetricFamily)
        yield from _families(data, DATA_GAUGES, GaugeMetricFamily)
        yield from _families(gossip, GOSSIP_COUNTERS, CounterMetricFamily)
        yield from _families(gossip, GOSSIP_GAUGES, GaugeMetricFamily)
        refused = CounterMetricFamily(PREFIX + "gossip_datagrams_refused",
                                      "Gossip datagrams refused, by reason: no key opens them, plaintext where "
                                      "sealing is required, sealed without a keyring here, or invalid.",
                                      labels=["reason"])
        for reason, count in {**gossip["datagrams_unopened"], INVALID: gossip["datagrams_refused"]}.items():
            refused.add_metric([reason], count)
        yield refused
        internal = CounterMetricFamily(PREFIX + "internal_refused",
                                       "Connections of the internal RPC refused, by reason.", labels=["reason"])
        for reason, count in {**dict.fromkeys(REFUSALS, 0), **stats["internal_refused"]}.items():
            internal.add_metric([reason], count)
        yield internal
        http = stats["http"]
        if http:
            yield from _http_families(http)
        reactor = stats["reactor"]
        if reactor:
            yield GaugeMetricFamily(PREFIX + "reactor_lag_seconds", "How late the reactor fired its latest probe timer.",
                                    value=round(reactor["lag_ms"] / 1000, 4))
            yield GaugeMetricFamily(PREFIX + "reactor_lag_max_seconds",
                                    "The largest reactor lateness of the last minute.", value=round(reactor["lag_max_ms"] / 1000, 4))
        states = dict.fromkeys((state.value for state in State), 0)
        for member in self._members():
            states[member["state"]] += 1
        members = GaugeMetricFamily(PREFIX + "members", "Members this node knows, itself included, by state.",
                                    labels=["state"])
        for state, count in states.items():
            members.add_metric([state], count)
        yield members


def _http_families(http: dict) -> Iterator[Metric]:
    """The HTTP port's limits: connections by kind, bytes in flight, requests in progress, refusals."""
    connections = GaugeMetricFamily(PREFIX + "http_connections", "Connections held, by kind: client, reserve "
                                    "(waiting to become a call between nodes) and internal.", labels=["kind"])
    for kind, count in http["connections"].items():
        connections.add_metric([kind], count)
    yield connections
    yield GaugeMetricFamily(PREFIX + "http_inflight_bytes", "Bytes of request bodies received or held.",
                            value=http["inflight_bytes"])
    yield GaugeMetricFamily(PREFIX + "http_requests_in_progress", "Requests being served.",
                            value=http["requests_in_progress"])
    yield GaugeMetricFamily(PREFIX + "internal_inflight_bytes", "Bytes of calls from other nodes being answered.",
                            value=http["internal_inflight_bytes"])
    yield CounterMetricFamily(PREFIX + "internal_reads_paused", "Times the connections of other nodes stopped "
                              "being read, their calls over --max-inflight-bytes.", value=http["internal_reads_paused"])
    refused = CounterMetricFamily(PREFIX + "http_refused", "Connections and requests refused by the node's limits, "
                                  "by reason.", labels=["reason"])
    for reason, count in http["refused"].items():
        refused.add_metric([reason], count)
    yield refused


def _families(section: dict, table: dict, family: type) -> Iterable[Metric]:
    # Booleans and reasons (refused_by_cluster is one, or None) become 0 or 1.
    return (family(PREFIX + name, text, value=_number(section[key])) for key, (name, text) in table.items())


def _number(value) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else float(bool(value))


class Metrics:
    """A node's metrics: its own registry with the stats, the requests and the process."""

    def __init__(self, stats: Callable[[], dict], members: Callable[[], list[dict]]) -> None:
        # The classic text format shows each counter's creation time as a series of its own
        # (``_created``), which Prometheus stores as a gauge: noise.  A switch of the process.
        disable_created_metrics()
        self.registry = CollectorRegistry()
        self.requests = RequestMetrics(Activity(OPERATIONS))
        self.registry.register(self.requests)
        self.registry.register(StatsCollector(stats, members))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def activity(self) -> dict:
        """The requests of the last minutes, by operation (``core.activity``)."""
        return self.requests.activity.report(perf_counter())

    def exposition(self, accept: bytes | None) -> tuple[bytes, bytes]:
        """The scrape's body and Content-Type: OpenMetrics if ``accept`` asks for it, else Prometheus text."""
        encoder, content_type = choose_encoder((accept or b"").decode("latin-1"))
        return encoder(self.registry), content_type.encode("latin-1")
