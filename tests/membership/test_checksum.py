from gossipdht.membership.checksum import MemberChecksum
from gossipdht.membership.member import Member, State


def member(name, incarnation=1, state=State.ALIVE, host="10.0.0.1"):
    return Member(name, host, 7000, 7000, incarnation, state, 0.0)


def checksum_of(*members):
    checksum = MemberChecksum()
    for m in members:
        checksum.touch(m)
    return checksum


def test_equal_for_the_same_live_members_in_any_order_and_counting_them():
    a, b = checksum_of(member("x"), member("y")), checksum_of(member("y"), member("x"))
    assert a.value == b.value != 0 and a.live == 2


def test_an_incarnation_an_address_or_a_death_changes_it_and_undoing_restores_it():
    checksum = checksum_of(member("x"), member("y"))
    before = checksum.value
    for changed in (member("y", incarnation=2), member("y", host="10.0.0.2"), member("y", state=State.DEAD)):
        checksum.touch(changed)
        assert checksum.value != before
        checksum.touch(member("y"))
        assert checksum.value == before
    checksum.touch(member("y", state=State.DEAD))
    assert checksum.value == checksum_of(member("x")).value and checksum.live == 1
