"""The retry-once rule of calls between nodes, which the peer and RPC clients follow."""

from twisted.internet.defer import Deferred, ensureDeferred

from gossipdht.net.idempotent import once_more


class Stale(Exception):
    pass


def test_once_more_calls_again_once_after_a_stale_connection_only():
    calls = []

    def call(*outcomes):
        async def attempt():
            outcome = outcomes[len(calls)]
            calls.append(outcome)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return ensureDeferred(once_more(attempt, lambda error: isinstance(error, Stale)))

    assert _result(call(Stale(), "answer")) == "answer" and len(calls) == 2
    calls.clear()
    assert isinstance(_result(call(Stale(), Stale())), Stale) and len(calls) == 2  # not a third time
    calls.clear()
    assert isinstance(_result(call(ValueError(), "unused")), ValueError) and len(calls) == 1


def _result(d: Deferred):
    results = []
    d.addBoth(results.append)
    return results[0].value if hasattr(results[0], "value") else results[0]
