"""The wait a read of another node may expect: its answer times and what is outstanding."""

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from gossipdht.core.errors import PeerError
from gossipdht.net.messages import pack_records
from gossipdht.net.remotereplica import RemoteReplica


class HeldRpc:
    """An RPC client whose calls are answered when the test says."""

    def __init__(self) -> None:
        self.calls: list[Deferred] = []

    def call(self, address, method, body, timeout):
        self.calls.append(Deferred())
        return self.calls[-1]


def test_the_expected_wait_is_the_answer_time_times_what_is_outstanding_and_one():
    clock, rpc = Clock(), HeldRpc()
    replica = RemoteReplica("peer", ("127.0.0.1", 1), rpc, clock)
    assert replica.expected_wait() == 0.0  # never heard from: tried like any other
    first = replica.read_one("k")
    clock.advance(0)
    clock.advance(0.05)
    rpc.calls[0].callback(pack_records([None]))
    assert first.result is None
    assert replica.expected_wait() == 0.05
    pending = [replica.read_one("a"), replica.read_one("b")]
    assert replica.expected_wait() == 0.05 * 3
    clock.advance(0)
    clock.advance(2.0)
    rpc.calls[1].errback(PeerError("timed out"))  # a failure counts its time too
    for read in pending:
        read.addErrback(lambda failure: failure.trap(PeerError))
    assert replica.expected_wait() == pytest.approx(2.0)
