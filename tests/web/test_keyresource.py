"""``/db/<key>`` in memory: the key resource on treq's StubTreq, a coordinator stand-in
behind it, so status codes, headers and one-line errors are checked without a socket."""

from __future__ import annotations

from typing import Optional

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import LogLevel, capturedLogs

from gossipdht.core.hlc import Version
from gossipdht.data.coordinator import QuorumError
from gossipdht.storage import Record
from gossipdht.web.keyresource import KeyResource


class Coordinator:
    """Keeps records in a dictionary; ``failure`` makes every call fail with it."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.calls: list[tuple] = []
        self.failure: Optional[Exception] = None
        self.clock = 0

    def _answer(self, value) -> Deferred:
        return fail(self.failure) if self.failure is not None else succeed(value)

    def get(self, key: str, r: Optional[int]) -> Deferred:
        self.calls.append(("get", key, r))
        record = self.records.get(key)
        return self._answer(None if record is None or record.deleted else record)

    def put(self, key: str, value: bytes, content_type: str, w: Optional[int]) -> Deferred:
        self.calls.append(("put", key, w))
        self.clock += 1
        self.records[key] = Record(Version(self.clock, "node"), value, content_type)
        return self._answer(self.records[key])

    def delete(self, key: str, w: Optional[int]) -> Deferred:
        self.calls.append(("delete", key, w))
        self.clock += 1
        self.records[key] = Record(Version(self.clock, "node"), b"", "", True)
        return self._answer(self.records[key])


@pytest.fixture
def coordinator():
    return Coordinator()


@pytest.fixture
def client(coordinator):
    return StubTreq(KeyResource(coordinator, max_value_bytes=10, replicas=3))


URL = "http://node/db/"


@pytest_twisted.ensureDeferred
async def test_put_then_get_answers_the_value_its_type_and_an_etag(client, coordinator):
    put = await client.put(URL + "k%20ey", b"value", headers={"Content-Type": "text/x-thing"})
    assert put.code == 204
    tag = put.headers.getRawHeaders("etag")[0]
    got = await client.get(URL + "k%20ey")
    assert (got.code, await got.content()) == (200, b"value")
    assert got.headers.getRawHeaders("content-type") == ["text/x-thing"]
    assert got.headers.getRawHeaders("etag") == [tag]
    assert coordinator.calls == [("put", "k ey", None), ("get", "k ey", None)]
    unchanged = await client.get(URL + "k%20ey", headers={"If-None-Match": tag})
    assert (unchanged.code, await unchanged.content()) == (304, b"")


@pytest_twisted.ensureDeferred
async def test_a_missing_or_deleted_key_is_404_with_no_body(client):
    assert (await client.get(URL + "nothing")).code == 404
    await client.put(URL + "k", b"v")
    deleted = await client.delete(URL + "k?w=3")
    assert deleted.code == 204
    gone = await client.get(URL + "k")
    assert (gone.code, await gone.content()) == (404, b"")


@pytest_twisted.ensureDeferred
async def test_a_form_value_is_stored_as_text(client, coordinator):
    await client.post(URL + "k", b"value=a+b%21", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert coordinator.records["k"][1:3] == (b"a b!", "text/plain; charset=utf-8")


@pytest.mark.parametrize("method, url, body, code, message", [
    ("PATCH", URL + "k", None, 405, b"method PATCH not allowed here\n"),
    ("GET", URL + "bad%zzkey", None, 400, None),
    ("GET", URL + "k?r=4", None, 400, b"r=4 is not a whole number from 1 to N=3\n"),
    ("PUT", URL + "k?w=0", b"v", 400, b"w=0 is not a whole number from 1 to N=3\n"),
    ("PUT", URL + "k", b"eleven byte", 413, b"value larger than 10 bytes\n"),
])
@pytest_twisted.ensureDeferred
async def test_bad_requests_get_one_line_and_reach_no_coordinator(client, coordinator, method, url, body, code,
                                                                   message):
    response = await client.request(method, url, data=body)
    text = await response.content()
    assert response.code == code
    assert response.headers.getRawHeaders("content-type") == ["text/plain; charset=utf-8"]
    assert text.endswith(b"\n") and text.count(b"\n") == 1
    assert message is None or text == message
    assert coordinator.calls == []
    if code == 405:
        assert response.headers.getRawHeaders("allow") == ["GET, HEAD, PUT, POST, DELETE"]


@pytest_twisted.ensureDeferred
async def test_no_quorum_is_503_with_the_coordinators_words(client, coordinator):
    coordinator.failure = QuorumError("1 of 2 replicas answered")
    response = await client.put(URL + "k", b"v")
    assert (response.code, await response.content()) == (503, b"1 of 2 replicas answered\n")


@pytest_twisted.ensureDeferred
async def test_an_unexpected_error_is_a_logged_500_without_a_traceback_in_the_answer(client, coordinator):
    coordinator.failure = RuntimeError("disk on fire")
    with capturedLogs() as events:
        response = await client.get(URL + "k")
    assert (response.code, await response.content()) == (500, b"internal error; the node's log has the details\n")
    logged = [e for e in events if e.get("log_level") == LogLevel.critical]
    assert len(logged) == 1 and logged[0]["log_failure"].check(RuntimeError)
