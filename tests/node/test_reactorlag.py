"""The reactor-lag probe, on a fake clock."""

from twisted.internet.task import Clock

from gossipdht.node.reactorlag import ReactorLag


def started(window=60.0):
    clock = Clock()
    lag = ReactorLag(clock, interval=0.1, window=window)
    lag.startService()
    return clock, lag


def test_a_timer_fired_on_time_is_no_lag():
    clock, lag = started()
    for _ in range(5):
        clock.advance(0.1)
    assert lag.stats() == {"lag_ms": 0.0, "lag_max_ms": 0.0}


def test_a_reactor_held_up_shows_how_late_the_timer_fired_and_the_largest_stays_for_the_window():
    clock, lag = started(window=10.0)
    clock.advance(0.35)  # something held the reactor: the timer due at 0.1 fires at 0.35
    assert lag.stats() == {"lag_ms": 250.0, "lag_max_ms": 250.0}
    clock.advance(0.1)
    assert lag.stats() == {"lag_ms": 0.0, "lag_max_ms": 250.0}
    for _ in range(100):
        clock.advance(0.1)
    assert lag.stats() == {"lag_ms": 0.0, "lag_max_ms": 0.0}  # older than the window


def test_a_stopped_probe_sets_no_timer():
    clock, lag = started()
    lag.stopService()
    assert clock.getDelayedCalls() == []
