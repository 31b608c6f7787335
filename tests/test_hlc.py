from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gossipdht.hlc import COUNTER_BITS, HybridLogicalClock, Version


class HybridLogicalClockTests(SynchronousTestCase):
    def setUp(self):
        self.wall = Clock()
        self.wall.advance(1_000)
        self.clock = HybridLogicalClock(self.wall.seconds)

    def test_follows_the_wall_clock(self):
        first = self.clock.now()
        self.wall.advance(2.5)
        second = self.clock.now()
        self.assertEqual((second >> COUNTER_BITS) - (first >> COUNTER_BITS), 2500)

    def test_still_increases_when_the_wall_clock_stalls_or_steps_back(self):
        stamps = [self.clock.now() for _ in range(5)]
        self.wall.rightNow -= 60
        stamps += [self.clock.now() for _ in range(5)]
        self.assertEqual(stamps, sorted(set(stamps)))

    def test_observe_moves_past_a_timestamp_from_elsewhere(self):
        ahead = (int(self.wall.seconds() * 1000) + 10_000) << COUNTER_BITS
        self.clock.observe(ahead)
        self.assertGreater(self.clock.now(), ahead)

    def test_observing_an_old_timestamp_changes_nothing(self):
        now = self.clock.now()
        self.clock.observe(5)
        self.assertEqual(self.clock.now(), now + 1)


class VersionTests(SynchronousTestCase):
    def test_orders_by_timestamp_then_node(self):
        self.assertLess(Version(1, "z"), Version(2, "a"))
        self.assertLess(Version(2, "a"), Version(2, "b"))

    def test_wall_seconds(self):
        self.assertEqual(Version(1500 << COUNTER_BITS | 7, "n").wall_seconds, 1.5)
