"""The public REST API over real HTTP on loopback, for both storage engines."""

from __future__ import annotations

import json
import random

import pytest
import pytest_twisted
from twisted.logger import capturedLogs

from gossipdht.storage import ring_order

CRLF = b"\r\n"


def header(headers, name):
    values = headers.getRawHeaders(name)
    return None if values is None else values[0]


@pytest_twisted.ensureDeferred
async def test_form_value_is_url_decoded_and_stored_as_text(http):
    form = {b"content-type": [b"application/x-www-form-urlencoded"]}
    status, headers, body = await http.request(b"PUT", b"/db/mykey", b"value=my+value%21", form)
    assert (status, body) == (204, b"")
    status, headers, body = await http.request(b"GET", b"/db/mykey")
    assert (status, body) == (200, b"my value!")
    assert header(headers, b"content-type") == b"text/plain; charset=utf-8"


@pytest_twisted.ensureDeferred
async def test_raw_body_is_stored_byte_for_byte_with_its_content_type(http):
    value = bytes(range(256)) * 3
    await http.request(b"PUT", b"/db/bin", value, {b"content-type": [b"image/x-test"]})
    status, headers, body = await http.request(b"GET", b"/db/bin")
    assert (status, body) == (200, value)
    assert header(headers, b"content-type") == b"image/x-test"
    assert header(headers, b"content-length") == b"%d" % len(value)


@pytest_twisted.ensureDeferred
async def test_form_body_without_value_prefix_is_kept_as_is(http):
    form = {b"content-type": [b"application/x-www-form-urlencoded"]}
    await http.request(b"PUT", b"/db/k", b"value", form)
    _, headers, body = await http.request(b"GET", b"/db/k")
    assert body == b"value"
    assert header(headers, b"content-type") == b"application/x-www-form-urlencoded"


@pytest_twisted.ensureDeferred
async def test_default_content_type_and_post_is_put(http):
    status, _, _ = await http.request(b"POST", b"/db/p", b"posted")
    assert status == 204
    _, headers, body = await http.request(b"GET", b"/db/p")
    assert body == b"posted"
    assert header(headers, b"content-type") == b"application/octet-stream"


@pytest_twisted.ensureDeferred
async def test_missing_key_is_404_with_empty_body(http):
    status, headers, body = await http.request(b"GET", b"/db/nothing")
    assert (status, body) == (404, b"")
    assert header(headers, b"content-type") is None


@pytest_twisted.ensureDeferred
async def test_head_tells_whether_a_key_exists(http):
    await http.request(b"PUT", b"/db/there", b"12345")
    status, headers, body = await http.request(b"HEAD", b"/db/there")
    assert (status, body) == (200, b"")
    assert header(headers, b"etag") is not None
    status, _, _ = await http.request(b"HEAD", b"/db/absent")
    assert status == 404


@pytest_twisted.ensureDeferred
async def test_delete_is_idempotent_and_deleted_keys_read_as_missing(http):
    await http.request(b"PUT", b"/db/gone", b"x")
    assert (await http.request(b"DELETE", b"/db/gone"))[0] == 204
    assert (await http.request(b"GET", b"/db/gone"))[0] == 404
    assert (await http.request(b"DELETE", b"/db/gone"))[0] == 204
    assert (await http.request(b"DELETE", b"/db/never-was"))[0] == 204
    _, _, listing = await http.request(b"GET", b"/db")
    assert listing == b""


@pytest_twisted.ensureDeferred
async def test_etag_follows_the_version_and_if_none_match_answers_304(http):
    _, put_headers, _ = await http.request(b"PUT", b"/db/e", b"one")
    _, get_headers, _ = await http.request(b"GET", b"/db/e")
    tag = header(get_headers, b"etag")
    assert tag == header(put_headers, b"etag") and tag.startswith(b'"')
    status, _, body = await http.request(b"GET", b"/db/e", headers={b"if-none-match": [tag]})
    assert (status, body) == (304, b"")
    await http.request(b"PUT", b"/db/e", b"two")
    status, headers, body = await http.request(b"GET", b"/db/e", headers={b"if-none-match": [tag]})
    assert (status, body) == (200, b"two")
    assert header(headers, b"etag") != tag


@pytest_twisted.ensureDeferred
async def test_keys_may_hold_slashes_and_any_utf8(http):
    keys = {b"/db/a/b": "a/b", b"/db/a%2Fc": "a/c", b"/db/%C3%A5%C3%A4%C3%B6": "\u00e5\u00e4\u00f6",
            b"/db/sp%20ace": "sp ace", b"/db/a//b/": "a//b/", b"/db/q%3Fx": "q?x"}
    for path in keys:
        assert (await http.request(b"PUT", path, path))[0] == 204
    for path in keys:
        assert (await http.request(b"GET", path))[2] == path
    _, _, listing = await http.request(b"GET", b"/db?format=json")
    assert json.loads(listing) == sorted(keys.values(), key=ring_order)


@pytest_twisted.ensureDeferred
async def test_bad_keys_get_400_with_one_line(http):
    longest = b"k" * 1024
    assert (await http.request(b"PUT", b"/db/" + longest, b"v"))[0] == 204
    for path in [b"/db/", b"/db/" + longest + b"k", b"/db/%FF", b"/db/%zz", b"/db/abc%4", b"/db/%C3"]:
        status, headers, body = await http.request(b"PUT", path, b"v")
        assert status == 400, path
        assert body.endswith(b"\n") and body.count(b"\n") == 1 and b"Traceback" not in body
        assert (await http.request(b"GET", path))[0] == 400


@pytest_twisted.ensureDeferred
async def test_oversized_value_is_413_and_leaves_stored_data_alone(http):
    await http.request(b"PUT", b"/db/big", b"small")
    status, _, body = await http.request(b"PUT", b"/db/big", b"x" * 1001)
    assert status == 413 and b"1000" in body
    form = {b"content-type": [b"application/x-www-form-urlencoded"]}
    assert (await http.request(b"PUT", b"/db/big", b"value=" + b"%41" * 1001, form))[0] == 413
    assert (await http.request(b"PUT", b"/db/big", b"value=" + b"%41" * 1000, form))[0] == 204
    assert (await http.request(b"GET", b"/db/big"))[2] == b"A" * 1000
    assert (await http.request(b"PUT", b"/db/big", b"y" * 1000))[0] == 204


@pytest_twisted.ensureDeferred
async def test_unsupported_method_is_405_with_allow(http):
    status, headers, body = await http.request(b"PATCH", b"/db/k", b"x")
    assert status == 405
    assert set(header(headers, b"allow").split(b", ")) == {b"GET", b"HEAD", b"PUT", b"POST", b"DELETE"}
    status, headers, _ = await http.request(b"DELETE", b"/db")
    assert status == 405 and set(header(headers, b"allow").split(b", ")) == {b"GET", b"HEAD", b"POST"}


TSV = {b"content-type": [b"text/tab-separated-values; charset=utf-8"]}


@pytest_twisted.ensureDeferred
async def test_bulk_tsv_writes_every_line_as_a_text_value(http):
    values = {f"k{i}": "v\t" * i + "\u00e5" * 30 for i in range(40)}  # 2,400+ bytes: over one value's limit
    body = "".join(f"{k}\t{v}\r\n" for k, v in values.items()).encode()
    status, headers, answer = await http.request(b"POST", b"/db", body, TSV)
    assert (status, json.loads(answer)) == (200, {"stored": 40, "errors": {}})
    assert header(headers, b"content-type") == b"application/json"
    for key, value in values.items():
        status, headers, body = await http.request(b"GET", b"/db/" + key.encode())
        assert (status, body.decode()) == (200, value)
        assert header(headers, b"content-type") == b"text/plain; charset=utf-8"


@pytest_twisted.ensureDeferred
async def test_bulk_json_object_of_strings_is_written(http):
    body = json.dumps({"a": "1", "\u00f6/b": "two"}).encode()
    status, _, answer = await http.request(b"POST", b"/db", body, {b"content-type": [b"application/json"]})
    assert (status, json.loads(answer)) == (200, {"stored": 2, "errors": {}})
    assert (await http.request(b"GET", b"/db/%C3%B6%2Fb"))[2] == b"two"


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("content_type, body, status, message", [
    (b"text/tab-separated-values", b"a\t1\nb\t2\nno tab here\nd\t4\n", 400, b"line 3: no tab"),
    (b"text/tab-separated-values", b"a\t1\n\t2\n", 400, b"line 2: empty key"),
    (b"text/tab-separated-values", b"a\t1\nb\t\xff\n", 400, b"line 2: not valid UTF-8"),
    (b"text/tab-separated-values", b"a\t1\nb\t" + b"x" * 1001 + b"\n", 400, b"line 2: value larger"),
    (b"application/json", b'{"a": "1", "b": 2}', 400, b"'b': the value must be a string"),
    (b"application/json", b'["a", "1"]', 400, b"must be an object"),
    (b"application/json", b'{"a": ', 400, b"not JSON"),
    (b"text/csv", b"a,1\n", 415, b"tab-separated-values or application/json"),
])
async def test_bad_bulk_body_is_refused_whole(http, content_type, body, status, message):
    got, _, answer = await http.request(b"POST", b"/db", body, {b"content-type": [content_type]})
    assert got == status and message in answer and answer.count(b"\n") == 1
    assert (await http.request(b"GET", b"/db?scope=replica"))[2] == b""


@pytest_twisted.ensureDeferred
async def test_bulk_keys_that_miss_their_quorum_are_named_in_a_503(http):
    status, _, answer = await http.request(b"POST", b"/db?w=2", b"a\t1\nb\t2\n", TSV)
    assert status == 503
    answer = json.loads(answer)
    assert answer["stored"] == 0 and sorted(answer["errors"]) == ["a", "b"]
    assert "only 1 replicas" in answer["errors"]["a"]


@pytest_twisted.ensureDeferred
async def test_unknown_path_is_404_with_a_message(http):
    status, _, body = await http.request(b"GET", b"/nope")
    assert status == 404 and body == b"no such resource\n"


@pytest_twisted.ensureDeferred
async def test_listing_is_in_ring_order_crlf_separated_and_json_on_request(http):
    for key in [b"b", b"a", b"c", b"dead"]:
        await http.request(b"PUT", b"/db/" + key, b"v")
    await http.request(b"DELETE", b"/db/dead")
    live = sorted(["a", "b", "c"], key=ring_order)
    status, headers, body = await http.request(b"GET", b"/db")
    assert (status, body) == (200, "\r\n".join(live).encode())
    assert header(headers, b"content-type") == b"text/plain; charset=utf-8"
    _, headers, body = await http.request(b"GET", b"/db?format=json")
    assert json.loads(body) == live
    assert header(headers, b"content-type") == b"application/json"
    _, _, body = await http.request(b"GET", b"/db", headers={b"accept": [b"application/json"]})
    assert json.loads(body) == live


@pytest_twisted.ensureDeferred
async def test_listing_spans_many_pages_in_order(node, http):
    from gossipdht.core.hlc import Version
    from gossipdht.storage import Record

    keys = sorted((f"key-{i:05d}" for i in range(2500)), key=ring_order)
    node.store.write([(k, Record(Version(1, "t"), b"v", "text/plain")) for k in keys])
    _, _, body = await http.request(b"GET", b"/db")
    assert body.split(CRLF) == [k.encode() for k in keys]
    _, _, body = await http.request(b"GET", b"/db?format=json")
    assert json.loads(body) == keys


@pytest_twisted.ensureDeferred
async def test_client_that_disconnects_mid_listing_is_not_an_error(node):
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    from twisted.internet.protocol import Protocol

    from gossipdht.core.hlc import Version
    from gossipdht.storage import Record

    node.store.write([(f"k{i:06d}", Record(Version(1, "t"), b"v", "text/plain")) for i in range(100_000)])
    closed = Deferred()

    class HangUp(Protocol):
        def dataReceived(self, data):
            self.transport.abortConnection()

        def connectionLost(self, reason):
            closed.callback(None)

    with capturedLogs() as events:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", node.ports[0].getHost().port)
        protocol = await connectProtocol(endpoint, HangUp())
        protocol.transport.write(b"GET /db HTTP/1.1\r\nHost: x\r\n\r\n")
        await closed
        # The server notices the hang-up on its next reactor turns.
        for _ in range(5):
            await deferLater(reactor, 0.01)
    failures = [e for e in events if "log_failure" in e or e.get("log_level") is not None and e["log_level"].name in ("error", "critical")]
    assert failures == []


def deferLater(reactor, seconds):
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_peers_and_health_end_with_a_line_break(node, http):
    status, _, body = await http.request(b"GET", b"/dht/peers")
    assert (status, body) == (200, b"test-node\r\n")
    status, _, body = await http.request(b"GET", b"/health")
    assert (status, body) == (200, b"OK\n")


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("path", [b"/dht/members", b"/dht/stats", b"/dht/ring", b"/dht/owners/k?format=json",
                                  b"/dht/transfers?format=json"])
async def test_json_answers_end_with_a_line_break(http, path):
    status, _, body = await http.request(b"GET", path)
    assert status == 200 and body.endswith(b"\n") and json.loads(body) is not None


@pytest_twisted.ensureDeferred
async def test_owners_as_text_is_one_member_a_line(node, http):
    status, _, body = await http.request(b"GET", b"/dht/owners/k")
    port = node.ports[0].getHost().port
    assert (status, body) == (200, b"test-node 127.0.0.1:%d\r\n" % port)


@pytest_twisted.ensureDeferred
async def test_random_requests_never_get_a_5xx_nor_damage_data(http):
    rng = random.Random(7)
    await http.request(b"PUT", b"/db/keep", b"precious")
    alphabet = [b"%", b"%2", b"%FF", b"%C3%A5", b"/", b"a", b"?", b"#", b"%00", b"..", b"keep", b"~", b";", b"="]
    methods = [b"GET", b"HEAD", b"PUT", b"POST", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"FOO"]
    prefixes = [b"/db/", b"/db", b"/dht/", b"/health", b"/", b"//db/"]
    for _ in range(300):
        path = rng.choice(prefixes) + b"".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))
        if path.rstrip(b"/") == b"/db/keep" or path.startswith(b"/db/keep?"):
            continue
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        content_type = rng.choice([b"application/x-www-form-urlencoded", b"text/plain", b"\xff\xfe"])
        status, _, _ = await http.request(rng.choice(methods), path, body, {b"content-type": [content_type]})
        assert status < 500, path
    assert (await http.request(b"GET", b"/db/keep"))[2] == b"precious"


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("query", [b"?r=0", b"?r=4", b"?w=x", b"?w=-1"])
async def test_quorum_outside_one_to_n_is_400(http, query):
    method = b"GET" if query.startswith(b"?r") else b"PUT"
    status, _, body = await http.request(method, b"/db/k" + query, b"v")
    assert status == 400 and b"from 1 to N=3" in body


@pytest_twisted.ensureDeferred
async def test_a_quorum_larger_than_the_cluster_is_503_saying_how_many(http):
    status, _, body = await http.request(b"PUT", b"/db/k?w=2", b"v")
    assert status == 503 and b"only 1 replicas" in body
    assert (await http.request(b"GET", b"/db/k?r=1"))[0] == 404


@pytest_twisted.ensureDeferred
async def test_a_lone_node_shows_its_ring_settled_and_refuses_bad_transfer_and_remove_requests(http, node):
    ring = node.cluster.ring.checksum
    reports = json.loads((await http.request(b"GET", b"/dht/transfers?cluster=1&format=json"))[2])
    assert [(r["node"], r["ring"]) for r in reports] == [(node.config.name, ring)]
    status, _, body = await http.request(b"GET", b"/dht/transfers?cluster=2")
    assert (status, body) == (400, b"cluster must be 0 or 1\n")
    status, _, body = await http.request(b"POST", b"/dht/remove", node.config.name.encode())
    assert status == 409 and body.count(b"\n") == 1
    status, _, body = await http.request(b"POST", b"/dht/remove", b"")
    assert status == 400
    status, _, body = await http.request(b"POST", b"/dht/remove", b"\xff")
    assert status == 400


@pytest_twisted.ensureDeferred
async def test_answers_under_db_carry_the_rings_checksum_and_owners_count_no_hop(http, node):
    checksum = json.loads((await http.request(b"GET", b"/dht/ring"))[2])["checksum"]
    for method, path in ((b"PUT", b"/db/k"), (b"GET", b"/db/k"), (b"GET", b"/db/missing"), (b"DELETE", b"/db/k"),
                         (b"GET", b"/db/%zz"), (b"GET", b"/db"), (b"POST", b"/db")):
        _, headers, _ = await http.request(method, path, b"k\tv\n" if method == b"POST" else b"v",
                                           {b"content-type": [b"text/tab-separated-values"]} if method == b"POST" else None)
        assert headers.getRawHeaders(b"gossipdht-ring") == [checksum.encode()], (method, path)
    assert (await http.request(b"GET", b"/dht/ring"))[1].getRawHeaders(b"gossipdht-ring") is None
    stats = json.loads((await http.request(b"GET", b"/dht/stats"))[2])["data"]
    assert stats["writes_coordinated"] == 3 and stats["writes_coordinated_as_non_owner"] == 0
    assert stats["reads_coordinated"] == 2 and stats["reads_coordinated_as_non_owner"] == 0
