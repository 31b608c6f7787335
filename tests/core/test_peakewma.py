"""The answer time of a member: up at once, down slowly, forgotten when nothing is heard."""

import pytest

from gossipdht.core.peakewma import PeakEwma


def test_a_slower_answer_raises_the_average_at_once():
    average = PeakEwma(decay=10.0)
    average.observe(0.001, now=0.0)
    average.observe(0.050, now=0.001)
    assert average.seconds(0.001) == 0.050


def test_faster_answers_bring_it_down_over_the_decay_time():
    average = PeakEwma(decay=10.0)
    average.observe(0.050, now=0.0)
    for i in range(1, 101):  # an answer of 1 ms every 0.1 s, for 10 s
        average.observe(0.001, now=i * 0.1)
    assert average.seconds(10.0) == pytest.approx(0.001 + 0.049 / 2.718281828, rel=0.01)


def test_with_no_answer_it_decays_toward_zero():
    average = PeakEwma(decay=10.0)
    average.observe(0.050, now=0.0)
    assert average.seconds(10.0) == pytest.approx(0.050 / 2.718281828)
    assert average.seconds(100.0) < 0.00001
    assert average.seconds(0.0) == 0.050  # asking changes nothing
