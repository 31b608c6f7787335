"""The rolling window of requests by operation, on a clock passed in."""

import pytest

from gossipdht.core.activity import BOUNDS, Activity, quantile_ms


def test_each_completed_step_has_its_rate_and_quantiles_and_the_current_one_waits():
    activity = Activity(["get", "put"], step_seconds=5, steps=4)
    for i in range(100):  # step [10, 15): 100 gets of 1 ms, but two of 100 ms
        activity.observe("get", 0.1 if i >= 98 else 0.001, 10 + i * 0.01)
    activity.observe("get", 0.001, 15.5)  # the current step, not shown yet
    report = activity.report(16)
    assert report["step_seconds"] == 5
    get, put = report["operations"]["get"], report["operations"]["put"]
    # Steps [0, 5), [5, 10), [10, 15): oldest first.
    assert get["rate"] == [0.0, 0.0, 20.0] and put["rate"] == [0.0, 0.0, 0.0]
    assert get["p50_ms"][:2] == [None, None] and put["p99_ms"] == [None, None, None]
    # Within a bucket of the latency: at most 1.25 times off.
    assert 1 / 1.25 <= get["p50_ms"][2] <= 1.25 and 100 / 1.25 <= get["p99_ms"][2] <= 125


def test_steps_older_than_the_window_are_gone_even_where_a_slot_is_reused():
    activity = Activity(["get"], step_seconds=1, steps=3)
    activity.observe("get", 0.001, 0.5)
    assert activity.report(1.5)["operations"]["get"]["rate"] == [0.0, 1.0]
    assert activity.report(3.5)["operations"]["get"]["rate"] == [0.0, 0.0]
    activity.observe("get", 0.001, 3.2)  # the slot of step 0, now step 3
    activity.observe("get", 0.001, 3.7)
    assert activity.report(4.1)["operations"]["get"]["rate"] == [0.0, 2.0]


@pytest.mark.parametrize("seconds", [0.00005, 0.0031, 0.7, 9.9, 60.0])
def test_a_quantile_is_within_the_bucket_of_the_latency(seconds):
    activity = Activity(["get"], step_seconds=1, steps=2)
    activity.observe("get", seconds, 0)
    p50 = activity.report(1)["operations"]["get"]["p50_ms"][0]
    assert p50 <= max(seconds, BOUNDS[-1]) * 1000 * 1.0001
    assert p50 >= min(seconds, BOUNDS[-1]) * 1000 / 1.25 - 1e-9


def test_a_quantile_of_no_requests_is_refused():
    with pytest.raises(ValueError):
        quantile_ms([0] * (len(BOUNDS) + 1), 0, 0.5)
