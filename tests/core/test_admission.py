"""Connection slots and their reserve, the budget of bytes in flight, the tally of refusals."""

from __future__ import annotations

from gossipdht.core.admission import CLIENT, INTERNAL, MIN_RESERVE, RESERVE, Budget, Slots, Tally, connection_limits


def test_clients_fill_their_slots_then_only_the_reserve_is_left():
    slots = Slots(2, 1)
    assert [slots.open(), slots.open(), slots.open(), slots.open()] == [CLIENT, CLIENT, RESERVE, None]
    slots.close(CLIENT)
    assert slots.open() == CLIENT


def test_an_upgraded_connection_moves_to_the_reserve_and_frees_its_client_slot():
    slots = Slots(1, 2)
    assert slots.upgrade(slots.open()) == INTERNAL
    assert slots.open() == CLIENT
    assert slots.upgrade(slots.open()) == INTERNAL  # from the reserve
    assert slots.held == {CLIENT: 1, RESERVE: 0, INTERNAL: 2}
    assert slots.open() is None
    # With the reserve full, an upgraded client connection keeps its client slot.
    slots.close(CLIENT)
    assert slots.upgrade(slots.open()) == CLIENT


def test_limits_derived_from_open_files_leave_room_for_the_reserve_and_the_node():
    clients, reserve = connection_limits(65536)
    assert clients + reserve <= 65536 - 100 and reserve == clients // 16
    assert connection_limits(1024, 50) == (50, MIN_RESERVE)


def test_budget_refuses_what_would_pass_it():
    budget = Budget(10)
    assert budget.take(6) and not budget.take(5) and budget.take(4)
    budget.give(6)
    assert budget.used == 4


def test_tally_sums_refusals_up_at_most_once_an_interval():
    tally = Tally(10.0)
    assert tally.count("overload", 100.0)
    assert tally.summary(100.0) == {"overload": 1}
    assert not any(tally.count(reason, 100.0 + i) for i, reason in enumerate(["overload", "overload", "connections"]))
    assert tally.next_summary() == 110.0
    assert tally.count("overload", 110.0)
    assert tally.summary(110.0) == {"overload": 3, "connections": 1}
    assert tally.counts["overload"] == 4
