"""Batching: what is submitted in one reactor turn leaves together, bounded in flight,
items and bytes."""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gossipdht.data.batcher import Batcher


class BatcherTests(SynchronousTestCase):
    def test_batches_wait_for_a_free_slot_and_respect_the_byte_bound(self):


        clock, sent = Clock(), []

        def send(items):
            sent.append(items)
            d = Deferred()
            replies.append((d, items))
            return d

        replies = []
        batcher = Batcher(send, clock, max_in_flight=1, max_batch=10, size=len, max_bytes=5)
        first = batcher.submit("aaa")
        clock.advance(0)
        later = [batcher.submit(x) for x in ("bb", "cc", "dd")]  # while the first is in flight
        clock.advance(0)
        self.assertEqual(sent, [["aaa"]])
        d, items = replies.pop(0)
        d.callback([x.upper() for x in items])
        self.assertEqual(self.successResultOf(first), "AAA")
        clock.advance(0)
        self.assertEqual(sent[1], ["bb", "cc"])  # 4 bytes; a third item would pass 5
        d, items = replies.pop(0)
        d.callback([x.upper() for x in items])
        clock.advance(0)
        self.assertEqual(sent[2], ["dd"])
        self.assertEqual([self.successResultOf(x) for x in later[:2]], ["BB", "CC"])

    def test_a_failed_batch_fails_each_of_its_items_and_the_next_batch_still_goes(self):
        clock, sent = Clock(), []

        def send(items):
            sent.append(items)
            if len(sent) == 1:
                raise ConnectionError("peer gone")
            return [None] * len(items)

        batcher = Batcher(send, clock, max_in_flight=1, max_batch=2)
        first = [batcher.submit(x) for x in "abc"]
        clock.advance(0)
        for d in first[:2]:
            self.failureResultOf(d, ConnectionError)
        clock.advance(0)
        self.assertEqual(sent, [["a", "b"], ["c"]])
        self.assertIsNone(self.successResultOf(first[2]))

    def test_outstanding_counts_the_items_submitted_until_answered_or_failed(self):
        clock, replies = Clock(), []

        def send(items):
            replies.append(Deferred())
            return replies[-1]

        batcher = Batcher(send, clock, max_in_flight=1, max_batch=2)
        items = [batcher.submit(x) for x in "abc"]
        self.assertEqual(batcher.outstanding, 3)
        clock.advance(0)
        self.assertEqual(batcher.outstanding, 3)  # two in flight, one waiting
        replies[0].callback(None)
        self.assertEqual(batcher.outstanding, 1)
        clock.advance(0)
        replies[1].errback(ConnectionError("peer gone"))
        self.assertEqual(batcher.outstanding, 0)
        self.failureResultOf(items[2], ConnectionError)
