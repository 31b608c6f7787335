from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gossipdht.core.hlc import COUNTER_BITS, RESERVE_SECONDS, HybridLogicalClock, Version, timestamp_at


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


class ReservationTests(SynchronousTestCase):
    def setUp(self):
        self.wall = Clock()
        self.wall.advance(1_000)
        self.marks = []

    def test_a_restarted_clock_whose_wall_went_back_issues_later_timestamps(self):
        first = HybridLogicalClock(self.wall.seconds, 0, self.marks.append)
        issued = []
        for _ in range(50):
            issued += [first.now(), first.now()]
            self.wall.advance(0.1)
        first.observe(issued[-1] + timestamp_at(5))  # a peer's clock ahead
        issued.append(first.now())
        self.wall.rightNow -= 3_600
        restarted = HybridLogicalClock(self.wall.seconds, self.marks[-1], self.marks.append)
        self.assertGreater(restarted.now(), max(issued))

    def test_reserves_at_most_once_per_reserve_seconds_of_issued_time(self):
        clock = HybridLogicalClock(self.wall.seconds, 0, self.marks.append)
        issued = []
        for _ in range(10_000):
            issued.append(clock.now())
            self.assertLessEqual(issued[-1], self.marks[-1])  # reserved before it was returned
            self.wall.advance(0.001 if len(issued) % 3 else 0)  # slow: several stamps a millisecond
        span = (issued[-1] - issued[0]) / timestamp_at(RESERVE_SECONDS)
        self.assertGreater(span, 3)
        self.assertLessEqual(len(self.marks), 1 + span)
        self.assertEqual(self.marks, sorted(set(self.marks)))

    def test_an_observed_timestamp_is_reserved_before_one_after_it_is_issued(self):
        clock = HybridLogicalClock(self.wall.seconds, 0, self.marks.append)
        clock.now()
        ahead = clock.now() + timestamp_at(60)
        clock.observe(ahead)
        self.assertGreater(clock.now(), ahead)
        self.assertGreater(self.marks[-1], ahead)

    def test_a_failed_reservation_issues_nothing_and_is_tried_again(self):
        def reserve(mark):
            if not self.marks:
                self.marks.append(None)
                raise OSError("disk full")
            self.marks.append(mark)

        clock = HybridLogicalClock(self.wall.seconds, 0, reserve)
        self.assertRaises(OSError, clock.now)
        issued = clock.now()
        self.assertEqual(issued, timestamp_at(self.wall.seconds()))
        self.assertGreaterEqual(self.marks[-1], issued)


class VersionTests(SynchronousTestCase):
    def test_orders_by_timestamp_then_node(self):
        self.assertLess(Version(1, "z"), Version(2, "a"))
        self.assertLess(Version(2, "a"), Version(2, "b"))

    def test_wall_seconds(self):
        self.assertEqual(Version(1500 << COUNTER_BITS | 7, "n").wall_seconds, 1.5)
