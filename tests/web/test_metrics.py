"""``GET /metrics`` of real nodes over HTTP, parsed as Prometheus parses it."""

from __future__ import annotations

import json
import socket

import pytest
import pytest_twisted
from conftest import HTTP, TOKENS, eventually, start_node
from prometheus_client.parser import text_string_to_metric_families

from gossipdht.core.keyring import new_key
from gossipdht.core.sealing import REASONS
from gossipdht.net.rpc import REFUSALS
from gossipdht.web.metrics import DATA_COUNTERS, DATA_GAUGES, GOSSIP_COUNTERS, GOSSIP_GAUGES, INVALID

TYPES = {
    "gossipdht_http_requests": "counter",
    "gossipdht_http_request_duration_seconds": "histogram",
    "gossipdht_quorum_failures": "counter",
    "gossipdht_read_repairs": "counter",
    "gossipdht_hints_stored": "counter",
    "gossipdht_hints_delivered": "counter",
    "gossipdht_hints_pending": "gauge",
    "gossipdht_anti_entropy_exchanges": "counter",
    "gossipdht_keys_repaired": "counter",
    "gossipdht_keys_handed_off": "counter",
    "gossipdht_rebalance_rounds": "counter",
    "gossipdht_keys_held": "gauge",
    "gossipdht_tombstones_held": "gauge",
    "gossipdht_members": "gauge",
    "gossipdht_gossip_datagrams_sent": "counter",
    "gossipdht_gossip_datagrams_received": "counter",
    "gossipdht_gossip_datagrams_refused": "counter",
    "gossipdht_gossip_sent_bytes": "counter",
    "gossipdht_gossip_push_pulls": "counter",
    "gossipdht_gossip_refutations": "counter",
    "gossipdht_gossip_incarnations_refused": "counter",
    "gossipdht_gossip_health_score": "gauge",
    "gossipdht_internal_refused": "counter",
    "gossipdht_reactor_lag_seconds": "gauge",
    "gossipdht_reactor_lag_max_seconds": "gauge",
    "process_cpu_seconds": "counter",
    "process_resident_memory_bytes": "gauge",
    "python_info": "gauge",
}


def served(tmp_path, name: str = "metered", **overrides):
    """A started node (memory storage) and an HTTP client for it."""
    from twisted.internet import reactor

    service = start_node(tmp_path / name, storage="memory", **overrides)
    return service, HTTP(reactor, service.ports[0].getHost().port)


@pytest.fixture
def metered(tmp_path):
    service, http = served(tmp_path)
    yield service, http
    pytest_twisted.blockon(service.stopService())


async def scrape(http, headers=None) -> dict:
    """The families of one scrape by name, each sample's value by (name, sorted labels)."""
    status, response, body = await http.request(b"GET", b"/metrics", headers=headers)
    assert status == 200, body
    assert response.getRawHeaders(b"content-type") == [b"text/plain; version=0.0.4; charset=utf-8"]
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def value(families: dict, family: str, sample: str | None = None, **labels) -> float:
    """The value of the sample named ``sample`` (default: the family's name) with ``labels``."""
    wanted = sample or family
    matches = [s.value for s in families[family].samples if s.name == wanted and s.labels == labels]
    assert len(matches) == 1, (wanted, labels, families[family].samples)
    return matches[0]


@pytest_twisted.ensureDeferred
async def test_a_scrape_has_every_family_with_its_type(metered):
    _, http = metered
    families = await scrape(http)
    assert {name: families[name].type for name in TYPES if name in families} == TYPES
    assert all(name.startswith(("gossipdht_", "process_", "python_")) for name in families)
    assert {s.labels["state"]: s.value for s in families["gossipdht_members"].samples} == {
        "alive": 1, "suspect": 0, "dead": 0, "left": 0}
    assert {s.labels["reason"] for s in families["gossipdht_gossip_datagrams_refused"].samples} == {*REASONS, INVALID}
    assert {s.labels["reason"]: s.value for s in families["gossipdht_internal_refused"].samples} == dict.fromkeys(
        REFUSALS, 0)
    assert not [s for family in families.values() for s in family.samples if s.name.endswith("_created")]


@pytest_twisted.ensureDeferred
async def test_requests_raise_their_counter_and_histogram(metered):
    _, http = metered
    before = await scrape(http)
    assert (await http.request(b"PUT", b"/db/k", b"v"))[0] == 204
    assert (await http.request(b"GET", b"/db/k"))[0] == 200
    assert (await http.request(b"GET", b"/db/missing"))[0] == 404
    assert (await http.request(b"GET", b"/db/%ff"))[0] == 400  # refused before the coordinator
    bulk = await http.request(b"POST", b"/db", b"a\t1\nb\t2\n", {b"content-type": [b"text/tab-separated-values"]})
    assert bulk[0] == 200
    after = await scrape(http)

    def moved(operation: str, code: str) -> float:
        count = lambda families: sum(s.value for s in families["gossipdht_http_requests"].samples
                                     if s.labels == {"operation": operation, "code": code})
        return count(after) - count(before)

    assert (moved("put", "204"), moved("get", "200"), moved("get", "404"), moved("get", "400"),
            moved("bulk_put", "200")) == (1, 1, 1, 1, 1)
    latency = "gossipdht_http_request_duration_seconds"
    counts = {operation: value(after, latency, latency + "_count", operation=operation)
              - value(before, latency, latency + "_count", operation=operation) for operation in ("put", "get", "bulk_put")}
    assert counts == {"put": 1, "get": 3, "bulk_put": 1}
    assert value(after, latency, latency + "_bucket", operation="put", le="+Inf") == value(
        after, latency, latency + "_count", operation="put")
    assert value(after, "gossipdht_keys_held") == 3


@pytest_twisted.ensureDeferred
async def test_stats_and_metrics_agree(metered):
    _, http = metered
    for key in ("a", "b", "c"):
        assert (await http.request(b"PUT", b"/db/" + key.encode(), b"v"))[0] == 204
    assert (await http.request(b"DELETE", b"/db/c"))[0] == 204
    stats = json.loads((await http.request(b"GET", b"/dht/stats"))[2])
    families = await scrape(http)
    assert stats["data"]["writes_coordinated"] == 4
    for key, (name, _) in DATA_COUNTERS.items():
        assert value(families, f"gossipdht_{name}", f"gossipdht_{name}_total") == stats["data"][key], key
    for key, (name, _) in DATA_GAUGES.items():
        assert value(families, f"gossipdht_{name}") == stats["data"][key], key
    assert (value(families, "gossipdht_keys_held"), value(families, "gossipdht_tombstones_held")) == (2, 1)


def test_every_counter_of_the_stats_is_a_metric(metered):
    """A counter added to ``/dht/stats`` must be added to ``/metrics`` too."""
    stats = metered[0].api.node_stats()
    assert set(stats["data"]) == set(DATA_COUNTERS) | set(DATA_GAUGES)
    assert set(stats["gossip"]) == set(GOSSIP_COUNTERS) | set(GOSSIP_GAUGES) | {
        "datagrams_refused", "datagrams_unopened"}
    assert set(stats["reactor"]) == {"lag_ms", "lag_max_ms"}


@pytest.mark.parametrize("keyed, reason", [(False, INVALID), (True, "plaintext")])
@pytest_twisted.ensureDeferred
async def test_a_refused_datagram_raises_the_refused_counter(tmp_path, keyed, reason):
    options = {}
    if keyed:
        keyring = tmp_path / "keyring"
        keyring.write_text(new_key() + "\n")
        options["keyring"] = str(keyring)
    service, http = served(tmp_path, **options)
    try:
        refused = lambda families: value(families, "gossipdht_gossip_datagrams_refused",
                                         "gossipdht_gossip_datagrams_refused_total", reason=reason)
        before = refused(await scrape(http))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"not gossip", ("127.0.0.1", service.udp.getHost().port))

        async def counted() -> bool:
            return refused(await scrape(http)) == before + 1
        await eventually(counted)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_nodes_in_one_process_have_registries_of_their_own(tmp_path):
    first, first_http = served(tmp_path, "first")
    second, second_http = served(tmp_path, "second")
    try:
        assert (await first_http.request(b"PUT", b"/db/k", b"v"))[0] == 204
        put = lambda families: sum(s.value for s in families["gossipdht_http_requests"].samples
                                   if s.labels.get("operation") == "put")
        assert (put(await scrape(first_http)), put(await scrape(second_http))) == (1, 0)
    finally:
        await first.stopService()
        await second.stopService()


@pytest_twisted.ensureDeferred
async def test_metrics_false_turns_the_endpoint_off(tmp_path):
    service, http = served(tmp_path, metrics=False)
    try:
        assert service.api.metrics is None
        assert (await http.request(b"PUT", b"/db/k", b"v"))[0] == 204
        status, _, body = await http.request(b"GET", b"/metrics")
        assert (status, body) == (404, b"metrics are off on this node (--metrics false)\n")
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_openmetrics_on_request_and_the_read_role_with_tokens(token_node):
    from twisted.internet import reactor

    http = HTTP(reactor, token_node.ports[0].getHost().port)
    assert (await http.request(b"GET", b"/metrics"))[0] == 401
    status, headers, body = await http.request(b"GET", b"/metrics", headers={
        b"authorization": [b"Bearer " + TOKENS["read"].encode()], b"accept": [b"application/openmetrics-text"]})
    assert status == 200
    assert headers.getRawHeaders(b"content-type")[0].startswith(b"application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")


def test_latencies_fall_into_cumulative_buckets_whose_bounds_hold_at_most(monkeypatch):
    from prometheus_client import CollectorRegistry, generate_latest

    from gossipdht.core.activity import Activity
    from gossipdht.web import metrics
    from gossipdht.web.metrics import OPERATIONS, RequestMetrics

    monkeypatch.setattr(metrics, "perf_counter", lambda: 0.0)  # now: a request started at -s took s
    activity = Activity(OPERATIONS)
    requests, registry = RequestMetrics(activity), CollectorRegistry()
    registry.register(requests)
    for seconds in (0.0004, 0.001, 0.003, 20.0):  # 0.001 is on a bound: in its bucket
        requests.observe("put", 204, -seconds)
    requests.observe("get", 404, -0.0002)
    assert activity.report(activity.step_seconds)["operations"]["put"]["rate"][-1] == 4 / activity.step_seconds
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    latency = "gossipdht_http_request_duration_seconds"
    buckets = {s.labels["le"]: s.value for s in families[latency].samples
               if s.name == latency + "_bucket" and s.labels["operation"] == "put"}
    assert (buckets["0.0005"], buckets["0.001"], buckets["0.0025"], buckets["0.005"], buckets["10.0"],
            buckets["+Inf"]) == (1, 2, 2, 3, 3, 4)
    assert value(families, latency, latency + "_sum", operation="put") == pytest.approx(20.0044)
    assert {(s.labels["operation"], s.labels["code"]): s.value for s in families["gossipdht_http_requests"].samples
            if s.name.endswith("_total")} == {("put", "204"): 4, ("get", "404"): 1}
