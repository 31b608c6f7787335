"""The SWIM core, driven by hand with explicit times (no reactor, no sockets)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gossipdht.membership.lifeguard import LocalHealth, Suspicion
from gossipdht.membership.member import Datagram, State, StreamPing, SwimConfig, SyncRequest
from gossipdht.membership.swim import MAX_FIRST_INCARNATION, MAX_INCARNATION_STEP, Membership
from gossipdht.membership.wire import (
    MAX_DATAGRAM,
    Ack,
    Alive,
    Dead,
    Left,
    Nack,
    Ping,
    PingReq,
    Suspect,
    pack_datagram,
    pack_message,
    unpack_datagram,
)

CONFIG = SwimConfig()


def core(name="me", now=0.0, incarnation=0, port=1, seed=1, **kw):
    return Membership(name, "10.0.0.1", port, port, now=now, rng=random.Random(seed), incarnation=incarnation, **kw)


def datagram(sender, *messages, checksum=0):
    return pack_datagram(sender, checksum, [pack_message(m) for m in messages])


def messages_to(out, address=None):
    """Decoded messages of the datagrams in ``out`` (to ``address`` if given)."""
    found = []
    for item in out:
        if isinstance(item, Datagram) and (address is None or item.address == address):
            found.extend(unpack_datagram(item.data)[2])
    return found


def verification_pings(out):
    """(address, Ping) of the pings that check claimed members (their seq is a nonce above 2**32)."""
    return [(item.address, msg) for item in out if isinstance(item, Datagram)
            for msg in messages_to([item]) if isinstance(msg, Ping) and msg.seq >= 2**32]


def answer_verifications(m, now):
    """Run ``m``'s timers due at ``now`` and ack each verification ping from the address pinged."""
    for address, ping in verification_pings(m.tick(now)):
        m.receive(now, address, datagram(ping.target, Ack(ping.seq)))


def with_members(m, *names, now=0.0):
    m.merge_state(now, [Alive(n, 1, "10.0.1.%d" % i, 7000 + i, 7000 + i) for i, n in enumerate(names)], converged=True)
    return m


class MergeRuleTests(SynchronousTestCase):
    def setUp(self):
        self.m = with_members(core(), "x")
        self.events = []
        self.m.listeners.append(lambda e: self.events.append((e.member.name, e.previous, e.member.state)))

    def state(self, name="x"):
        member = self.m.members[name]
        return member.state, member.incarnation

    def test_suspect_then_higher_alive_refutes(self):
        self.m.merge_state(1, [Suspect("x", 1, "y")])
        self.assertEqual(self.state(), (State.SUSPECT, 1))
        self.m.merge_state(2, [Alive("x", 2, "10.0.1.0", 7000, 7000)])
        self.assertEqual(self.state(), (State.ALIVE, 2))
        self.assertEqual(self.events, [("x", State.ALIVE, State.SUSPECT), ("x", State.SUSPECT, State.ALIVE)])

    def test_stale_alive_never_resurrects_dead_or_left(self):
        self.m.receive(1, ("h", 1), datagram("y", Dead("x", 3, "y")))
        self.m.receive(2, ("h", 1), datagram("y", Alive("x", 3, "10.0.1.0", 7000, 7000), Alive("x", 2, "10.0.1.0", 7000, 7000)))
        self.assertEqual(self.state(), (State.DEAD, 3))
        self.m.receive(3, ("h", 1), datagram("y", Left("x", 4)))
        self.m.receive(4, ("h", 1), datagram("y", Alive("x", 4, "10.0.1.0", 7000, 7000), Dead("x", 4, "y")))
        self.assertEqual(self.state(), (State.LEFT, 4))
        self.m.receive(5, ("h", 1), datagram("y", Alive("x", 5, "10.0.1.0", 7000, 7000)))
        self.assertEqual(self.state(), (State.ALIVE, 5))

    def test_suspicion_of_self_is_refuted_with_a_higher_incarnation(self):
        out = self.m.receive(1, ("h", 1), datagram("x", Suspect("me", 0, "x")))
        self.assertEqual(self.m.incarnation, 1)
        self.assertEqual(self.m.stats.refutations, 1)
        out = self.m.tick(self.m.next_deadline())  # the refutation rides on what is sent next
        sent = messages_to(out) or messages_to(self.m.tick(self.m.next_deadline()))
        self.assertIn(Alive("me", 1, "10.0.0.1", 1, 1), sent)

    def test_restarted_node_beats_its_old_dead_record(self):
        # The cluster remembers "me" dead at incarnation 7; the new life started at 0.
        self.m.merge_state(1, [Dead("me", 7, "x")])
        self.assertEqual(self.m.incarnation, 8)
        self.assertEqual(self.m.members["me"].state, State.ALIVE)

    def test_name_conflict_from_another_address_is_refused_and_logged(self):
        lines = []
        m = with_members(core(log=lines.append), "x")
        m.receive(1, ("h", 1), datagram("z", Alive("x", 9, "10.9.9.9", 1, 1)))
        self.assertEqual(m.members["x"].address, ("10.0.1.0", 7000))
        self.assertEqual(m.stats.name_conflicts, 1)
        self.assertIn("refused x at 10.9.9.9:1", lines[0])
        self.assertIs(m.conflicts_with(Alive("x", 9, "10.9.9.9", 1, 1)), m.members["x"])

    def test_a_dead_member_may_come_back_at_a_new_address(self):
        self.m.merge_state(1, [Dead("x", 1, "y")])  # a remote "dead" only makes us suspect
        self.assertEqual(self.state(), (State.SUSPECT, 1))
        self.m.receive(1, ("h", 1), datagram("y", Dead("x", 1, "y")))
        self.m.receive(2, ("h", 1), datagram("y", Alive("x", 2, "10.9.9.9", 1, 1)))
        self.assertEqual(self.state(), (State.DEAD, 1))  # until it answers at its new address
        answer_verifications(self.m, 2)
        self.assertEqual((self.state(), self.m.members["x"].address), ((State.ALIVE, 2), ("10.9.9.9", 1)))

    def test_a_dead_member_never_known_is_taken_as_dead_by_name_until_it_comes_back(self):
        self.m.merge_state(1, [Dead("z", 4, "x")])
        self.assertEqual((self.m.members["z"].state, self.m.members["z"].port), (State.DEAD, 0))
        self.assertIn(("z", None, State.DEAD), self.events)
        for now in range(2, 40):  # nothing is sent to a member with no known address
            out = self.m.tick(now)
            self.assertFalse([item for item in out if getattr(item, "address", None) in (("", 0),)])
        self.m.receive(40, ("h", 1), datagram("z", Alive("z", 5, "10.0.1.9", 7009, 7009)))
        answer_verifications(self.m, 40)
        self.assertEqual((self.state("z"), self.m.members["z"].address), ((State.ALIVE, 5), ("10.0.1.9", 7009)))

    def test_an_operator_removes_a_dead_member_which_leaves_and_may_come_back(self):
        self.m = with_members(core(), "x", "y")
        self.m.receive(1, ("h", 1), datagram("y", Dead("x", 1, "y")))
        self.m.remove(2, "x")
        self.assertEqual(self.state(), (State.LEFT, 1))
        sent = []
        while self.m.next_deadline() < 5:
            sent += messages_to(self.m.tick(self.m.next_deadline()), ("10.0.1.1", 7001))
        self.assertIn(Left("x", 1), sent)  # the others learn of it
        self.m.receive(6, ("h", 1), datagram("x", Alive("x", 2, "10.0.1.0", 7000, 7000)))
        self.assertEqual(self.state(), (State.ALIVE, 2))

    def test_leave_is_not_a_failure(self):
        leaver = with_members(core("x", port=7000), "me")
        leaver.leave(5)
        self.assertEqual((leaver.members["x"].state, leaver.incarnation), (State.LEFT, 1))
        out = leaver.tick(leaver.next_deadline())
        for item in out:
            self.m.receive(6, ("h", 1), item.data)
        self.assertEqual(self.state(), (State.LEFT, 1))
        # a leaving node does not refute what it hears about itself
        leaver.receive(7, ("h", 1), datagram("me", Dead("x", 1, "me")))
        self.assertEqual(leaver.incarnation, 1)


updates = st.lists(
    st.tuples(st.sampled_from(["alive", "suspect", "dead", "left"]), st.integers(0, 5)), max_size=25
)


@settings(max_examples=300)
@given(updates)
def test_merge_rules_keep_their_invariants(sequence):
    m = with_members(core(), "x")
    kinds = {
        "alive": lambda i: Alive("x", i, "10.0.1.0", 7000, 7000),
        "suspect": lambda i: Suspect("x", i, "y"),
        "dead": lambda i: Dead("x", i, "y"),
        "left": lambda i: Left("x", i),
    }
    for t, (kind, incarnation) in enumerate(sequence):
        before = m.members["x"].state, m.members["x"].incarnation
        m.receive(float(t), ("h", 1), datagram("y", kinds[kind](incarnation)))
        state, inc = m.members["x"].state, m.members["x"].incarnation
        assert inc >= before[1]  # incarnations never go back
        if before[0] in (State.DEAD, State.LEFT) and state in (State.ALIVE, State.SUSPECT):
            assert kind == "alive" and inc > before[1]  # only a newer alive resurrects
        if before[0] is State.LEFT:
            assert state is not State.DEAD
        if state is State.SUSPECT and before[0] is not State.SUSPECT:
            assert before[0] is State.ALIVE
    # the checksum counts exactly the live members
    live = [n for n, mem in m.members.items() if mem.state in (State.ALIVE, State.SUSPECT)]
    fresh = with_members(core(), "x")
    if "x" not in live:
        fresh.receive(0, ("h", 1), datagram("y", Left("x", 99)))
    else:
        fresh.receive(0, ("h", 1), datagram("y", Alive("x", m.members["x"].incarnation, "10.0.1.0", 7000, 7000)))
    assert fresh.checksum() == m.checksum()


class ProbeTests(SynchronousTestCase):
    def setUp(self):
        self.m = with_members(core(), "a", "b", "c", "d")

    def first_probe(self):
        """Run timers until the next probe goes out: (its time, (address, Ping))."""
        for _ in range(500):
            now = self.m.next_deadline()
            out = self.m.tick(now)
            pings = [(item.address, msg) for item in out for msg in messages_to([item]) if isinstance(msg, Ping)]
            if pings:
                (ping,) = pings
                return now, ping
        self.fail("no probe was sent")

    def run_until(self, end):
        """Run every timer due up to ``end``."""
        while self.m.next_deadline() <= end:
            self.m.tick(self.m.next_deadline())

    def test_ack_answers_ping_and_piggybacks_news(self):
        out = self.m.receive(0, ("10.0.1.0", 7000), datagram("a", Ping(5, "me")))
        self.assertIn(Ack(5, 0), messages_to(out, ("10.0.1.0", 7000)))
        out = self.m.receive(0, ("10.0.1.0", 7000), datagram("a", Ping(6, "someone-else")))
        self.assertEqual(out, [])
        self.assertEqual(self.m.stats.refused, 1)

    def test_direct_acks_measure_the_target_clock_offset_from_the_shortest_round_trip(self):
        offsets = {}
        for _ in range(12):
            start, (address, ping) = self.first_probe()
            # Each target's clock is 30 s ahead.  The first ack of each comes late, after
            # a 0.19 s stall on the way back, which makes its sample 0.09 s off.
            rtt = 0.2 if ping.target not in offsets else 0.02
            their_time = start + (0.01 if rtt == 0.2 else rtt / 2) + 30
            self.m.receive(start + rtt, address, datagram(ping.target, Ack(ping.seq, int(their_time * 1000))))
            offsets[ping.target] = self.m.offsets.offset(ping.target)
            self.run_until(start + CONFIG.probe_window)
        for offset in offsets.values():
            self.assertLess(abs(offset - 30), 0.002)
        self.assertEqual(sorted(self.m.offsets.off_from_most("abcd", 0.5)), sorted(offsets))

    def test_acks_through_a_helper_say_nothing_of_the_target_clock(self):
        start, (address, ping) = self.first_probe()
        self.run_until(start + CONFIG.probe_timeout)  # indirect now
        self.m.receive(start + 0.5, ("10.0.1.3", 7003), datagram("d", Ack(ping.seq, 1)))
        self.assertIsNone(self.m.offsets.offset(ping.target))

    def test_unanswered_probe_goes_indirect_then_suspects(self):
        start, (address, ping) = self.first_probe()
        target = ping.target
        now = self.m.next_deadline()
        self.assertAlmostEqual(now - start, CONFIG.probe_timeout)
        out = self.m.tick(now)
        requests = [msg for msg in messages_to(out) if isinstance(msg, PingReq)]
        self.assertEqual(len(requests), 3)
        self.assertTrue(all(r.target == target for r in requests))
        self.assertIn(StreamPing(address, target, ping.seq), out)
        self.run_until(start + CONFIG.probe_window - 0.01)
        self.assertEqual(self.m.members[target].state, State.ALIVE)
        self.run_until(start + CONFIG.probe_window)
        self.assertEqual(self.m.members[target].state, State.SUSPECT)
        self.assertGreaterEqual(self.m.health, 3)  # no helper even nacked: suspect ourselves first

    def test_ack_through_a_helper_or_tcp_prevents_suspicion(self):
        for answer in ("helper", "tcp"):
            start, (address, ping) = self.first_probe()
            self.run_until(start + CONFIG.probe_timeout)  # the indirect phase begins
            late = start + CONFIG.probe_window - 0.1
            if answer == "helper":
                self.m.receive(late, ("10.0.1.3", 7003), datagram("d", Ack(ping.seq)))
            else:
                self.m.stream_ack(late, ping.seq)
            self.run_until(start + CONFIG.probe_window + 0.01)
            self.assertEqual(self.m.members[ping.target].state, State.ALIVE)

    def test_nacks_show_the_network_is_fine_here(self):
        start, (address, ping) = self.first_probe()
        self.run_until(start + CONFIG.probe_timeout)
        for helper in ("a", "b", "c"):
            self.m.receive(start + 0.5, ("h", 1), datagram(helper, Nack(ping.seq)))
        health = self.m.health  # other probes, also unanswered, may have run meanwhile
        self.run_until(start + CONFIG.probe_window)
        self.assertLessEqual(self.m.health, health)
        self.assertEqual(self.m.members[ping.target].state, State.SUSPECT)

    def test_a_suspect_is_told_in_the_ping_and_refutes_in_its_ack(self):
        for name in ("a", "b", "c", "d"):
            self.m.receive(0, ("h", 1), datagram("z", Suspect(name, 1, "z")))
        for _ in range(50):
            now = self.m.next_deadline()
            probes = [item for item in self.m.tick(now) if any(isinstance(m, Ping) for m in messages_to([item]))]
            if probes:
                break
        (probe,) = probes
        ping = next(m for m in messages_to([probe]) if isinstance(m, Ping))
        self.assertIn(Suspect(ping.target, 1, "me"), messages_to([probe]))  # the buddy system
        target = self.m.members[ping.target]
        suspect = Membership(ping.target, target.host, target.port, target.port, now=0, rng=random.Random(2),
                             incarnation=1)
        reply = suspect.receive(now, ("10.0.0.1", 1), probe.data)
        self.assertEqual(suspect.incarnation, 2)  # refuted at once...
        self.m.receive(now + 0.01, probe.address, reply[0].data)  # ...in its ack
        self.assertEqual(self.m.members[ping.target].state, State.ALIVE)

    def test_a_tcp_rescue_waits_for_the_helpers_before_judging_health(self):
        start, (address, ping) = self.first_probe()
        self.run_until(start + CONFIG.probe_timeout)
        health = self.m.health
        self.m.stream_ack(start + CONFIG.probe_timeout + 0.01, ping.seq)  # TCP answers at once
        self.run_until(start + CONFIG.probe_timeout + 0.1)
        for helper in ("a", "b", "c"):  # the helpers' nacks come later
            self.m.receive(start + 0.6, ("h", 1), datagram(helper, Nack(ping.seq)))
        self.run_until(start + CONFIG.probe_window)
        self.assertEqual(self.m.members[ping.target].state, State.ALIVE)
        self.assertLessEqual(self.m.health, health)

    def test_relays_ping_req_and_forwards_the_ack_or_nacks(self):
        out = self.m.receive(0, ("10.0.1.0", 7000), datagram("a", PingReq(42, "b", "10.0.1.1", 7001)))
        (ping,) = messages_to(out, ("10.0.1.1", 7001))
        out = self.m.receive(0.01, ("10.0.1.1", 7001), datagram("b", Ack(ping.seq)))
        self.assertIn(Ack(42, 10), messages_to(out, ("10.0.1.0", 7000)))  # with its own clock
        out = self.m.receive(1, ("10.0.1.0", 7000), datagram("a", PingReq(43, "c", "10.0.1.2", 7002)))
        nacks = []
        for _ in range(3):
            nacks += messages_to(self.m.tick(self.m.next_deadline()), ("10.0.1.0", 7000))
        self.assertIn(Nack(43), nacks)

    def test_a_ping_req_is_carried_out_only_for_a_live_member_at_its_address_and_boundedly(self):
        refused = self.m.stats.refused
        for source, sender in ((("10.0.1.0", 7000), "stranger"), (("10.9.9.9", 7000), "a")):
            out = self.m.receive(0, source, datagram(sender, PingReq(42, "b", "10.0.1.1", 7001)))
            self.assertEqual(messages_to(out, ("10.0.1.1", 7001)), [])
        self.assertEqual(self.m.stats.refused, refused + 2)
        for seq in range(CONFIG.max_relays + 5):
            self.m.receive(0, ("10.0.1.0", 7000), datagram("a", PingReq(seq, "b", "10.0.1.1", 7001)))
        self.assertEqual(len(self.m._relays), CONFIG.max_relays)
        self.assertEqual(self.m.stats.refused, refused + 7)

    def test_stalled_node_does_not_accuse(self):
        start, (address, ping) = self.first_probe()
        # The process was stalled: its timers run 3 s late.
        self.m.tick(start + 3)
        self.m.tick(start + 3.01)
        self.assertEqual(self.m.members[ping.target].state, State.ALIVE)
        self.assertGreaterEqual(self.m.stats.stalls_noticed, 1)
        # the ack that waited in the socket buffer is read in time
        self.m.receive(start + 3.02, address, datagram(ping.target, Ack(ping.seq)))
        self.m.tick(self.m.next_deadline())
        self.assertEqual(self.m.members[ping.target].state, State.ALIVE)

    def test_poor_local_health_slows_probing(self):
        m = with_members(core(), *["n%d" % i for i in range(30)])  # nobody ever answers
        probes_sent_at = []
        for _ in range(60):
            now = m.next_deadline()
            if any(isinstance(msg, Ping) for msg in messages_to(m.tick(now))):
                probes_sent_at.append(now)
        gaps = [b - a for a, b in zip(probes_sent_at, probes_sent_at[1:])]
        self.assertAlmostEqual(gaps[0], CONFIG.probe_interval)
        self.assertAlmostEqual(gaps[-1], CONFIG.probe_interval * CONFIG.awareness_max)
        self.assertEqual(m.health, CONFIG.awareness_max - 1)

    def test_deadline_is_never_before_the_latest_input(self):
        self.m.tick(self.m.next_deadline())
        self.m.merge_state(50.0, [Alive("news", 1, "10.9.9.9", 1, 1)])
        self.assertGreaterEqual(self.m.next_deadline(), 50.0)
        self.m.stream_ack(60.0, 12345)
        self.assertGreaterEqual(self.m.next_deadline(), 60.0)

    def test_deadline_always_moves_forward(self):
        now = 0.0
        for _ in range(200):
            self.m.tick(now)
            deadline = self.m.next_deadline()
            self.assertGreater(deadline, now)
            now = deadline


class DisseminationTests(SynchronousTestCase):
    def test_datagrams_stay_under_the_limit_with_many_pending_updates(self):
        m = core()
        m.merge_state(0, [Alive("member-%04d-%s" % (i, "x" * 30), 1, "10.1.2.3", 7000 + i, 7000 + i) for i in range(400)])
        answer_verifications(m, 0)  # a whole state brings more candidates than gossip may
        self.assertEqual(len(m.live_members()), 401)
        sizes = []
        for _ in range(20):
            out = m.tick(m.next_deadline())
            sizes += [len(item.data) for item in out if isinstance(item, Datagram)]
        self.assertTrue(sizes)
        self.assertLessEqual(max(sizes), MAX_DATAGRAM)
        self.assertGreater(max(sizes), MAX_DATAGRAM - 100)  # compound: packed full

    def test_each_update_is_sent_a_limited_number_of_times(self):
        m = with_members(core(), *["n%d" % i for i in range(20)])
        m.receive(0, ("h", 1), datagram("n1", Alive("news", 1, "10.5.5.5", 1, 1)))
        answer_verifications(m, 0)
        sent = 0
        for _ in range(200):
            sent += sum(1 for msg in messages_to(m.tick(m.next_deadline())) if msg == Alive("news", 1, "10.5.5.5", 1, 1))
        self.assertEqual(sent, CONFIG.retransmit_mult * 2)  # ceil(log10(22 + 1)) = 2

    def test_persistent_checksum_mismatch_asks_for_a_full_sync(self):
        m = with_members(core(), "a")
        self.assertEqual(m.receive(0, ("10.0.1.0", 7000), datagram("a", checksum=m.checksum() + 1)), [])
        out = m.receive(CONFIG.mismatch_grace, ("10.0.1.0", 7000), datagram("a", checksum=m.checksum() + 1))
        self.assertEqual(out, [SyncRequest(("10.0.1.0", 7000))])
        # a match in between resets the grace
        m.receive(10, ("h", 1), datagram("a", checksum=m.checksum() + 1))
        m.receive(10.5, ("h", 1), datagram("a", checksum=m.checksum()))
        self.assertEqual(m.receive(11.2, ("h", 1), datagram("a", checksum=m.checksum() + 1)), [])

    def test_converged_members_agree_on_the_checksum(self):
        a, b = core("a", port=1), core("b", port=2)
        a.merge_state(0, b.local_state())
        b.merge_state(0, a.local_state())
        self.assertNotEqual(a.checksum(), b.checksum())  # neither has answered the other yet
        for prober, probed in ((a, b), (b, a)):
            ((address, ping),) = verification_pings(prober.tick(0))
            (ack,) = probed.receive(0, ("10.0.0.1", prober.members[prober.name].port), datagram(prober.name, ping))
            prober.receive(0, address, ack.data)
        self.assertEqual(a.checksum(), b.checksum())

    def test_dead_members_are_reaped(self):
        m = with_members(core(), "x")
        m.receive(0, ("h", 1), datagram("y", Dead("x", 1, "y")))
        now = 0.0
        while now < CONFIG.reap_after * 0.9:
            now = m.next_deadline()
            m.tick(now)
        self.assertEqual(m.members["x"].state, State.DEAD)
        while now < CONFIG.reap_after * 1.2:
            now = m.next_deadline()
            m.tick(now)
        self.assertNotIn("x", m.members)

    def test_garbage_is_counted_and_dropped(self):
        m = core()
        for data in (b"", b"\x01", b"\x00garbage", b"\x01\x93", bytes(2000)):
            self.assertEqual(m.receive(0, ("h", 1), data), [])
        self.assertEqual((m.stats.refused, m.stats.received), (5, 0))


class IncarnationBoundTests(SynchronousTestCase):
    def setUp(self):
        self.m = with_members(core(incarnation=1_700_000_000), "x")

    def test_a_dead_at_the_largest_incarnation_changes_nothing(self):
        checksum = self.m.checksum()
        self.m.receive(1, ("h", 1), datagram("y", Dead("x", 2**63 - 1, "y"), Dead("me", 2**63 - 1, "y")))
        self.assertEqual((self.m.members["x"].state, self.m.members["x"].incarnation), (State.ALIVE, 1))
        self.assertEqual((self.m.incarnation, self.m.stats.refutations), (1_700_000_000, 0))
        self.assertEqual((self.m.checksum(), self.m.stats.incarnations_refused), (checksum, 2))
        sent = []
        while self.m.next_deadline() < 3:
            sent += messages_to(self.m.tick(self.m.next_deadline()))
        self.assertEqual([msg for msg in sent if isinstance(msg, (Dead, Alive))], [])  # nothing to spread

    def test_every_kind_of_update_may_step_up_so_far_and_no_further(self):
        too_far = 1 + MAX_INCARNATION_STEP + 1
        for update in (Alive("x", too_far, "10.0.1.0", 7000, 7000), Suspect("x", too_far, "y"), Left("x", too_far)):
            self.m.receive(1, ("h", 1), datagram("y", update))
        self.m.merge_state(1, [Dead("x", too_far, "y"), Suspect("me", 1_700_000_000 + MAX_INCARNATION_STEP + 1, "y")])
        self.assertEqual((self.m.members["x"].state, self.m.members["x"].incarnation), (State.ALIVE, 1))
        self.assertEqual((self.m.incarnation, self.m.stats.incarnations_refused), (1_700_000_000, 5))
        self.m.receive(2, ("h", 1), datagram("y", Dead("x", 1 + MAX_INCARNATION_STEP, "y")))
        self.assertEqual(self.m.members["x"].state, State.DEAD)  # a restart after years: still taken

    def test_a_member_not_known_yet_may_not_arrive_above_the_cap(self):
        self.m.receive(1, ("h", 1), datagram("y", Alive("new", MAX_FIRST_INCARNATION + 1, "10.0.2.1", 1, 1)))
        self.m.merge_state(1, [Dead("gone", MAX_FIRST_INCARNATION + 1, "y")])
        self.assertEqual((self.m.pending_candidates(), self.m.stats.incarnations_refused), (0, 2))
        self.assertEqual(sorted(self.m.members), ["me", "x"])
        self.m.receive(2, ("h", 1), datagram("y", Alive("new", MAX_FIRST_INCARNATION, "10.0.2.1", 1, 1)))
        self.assertEqual(self.m.pending_candidates(), 1)


class VerificationTests(SynchronousTestCase):
    """A member named in an Alive is taken on once it answered a ping from its address."""

    EVIL = Alive("evil", 10**12, "10.6.6.6", 7666, 7666)

    def setUp(self):
        self.m = with_members(core(), "x")
        self.events = []
        self.m.listeners.append(lambda e: self.events.append(e.member.name))

    def claim(self, now, *updates):
        """Tell of ``updates``; the verification pings that go out at once."""
        self.m.receive(now, ("10.0.1.0", 7000), datagram("x", *updates))
        self.assertEqual(self.m.next_deadline(), now)  # the ping is not left for a later probe
        return verification_pings(self.m.tick(now))

    def test_a_claimed_member_is_taken_on_only_when_it_answers_from_its_address(self):
        checksum = self.m.checksum()
        ((address, ping),) = self.claim(1, self.EVIL)
        self.assertEqual((address, ping.target), (("10.6.6.6", 7666), "evil"))
        self.assertNotIn("evil", self.m.members)
        self.assertEqual((self.m.checksum(), self.events), (checksum, []))
        self.m.receive(1.01, ("10.0.1.0", 7000), datagram("evil", Ack(ping.seq)))  # from someone else
        self.m.receive(1.01, address, datagram("evil", Ack(ping.seq ^ 1)))  # a guess at the nonce
        self.assertEqual((sorted(self.m.members), self.m.pending_candidates()), (["me", "x"], 1))
        self.m.receive(1.02, address, datagram("evil", Ack(ping.seq)))
        self.assertEqual((self.m.members["evil"].state, self.m.members["evil"].address), (State.ALIVE, address))
        self.assertEqual((self.events, self.m.stats.candidates_verified, self.m.pending_candidates()), (["evil"], 1, 0))
        self.assertNotEqual(self.m.checksum(), checksum)
        sent = []
        while self.m.next_deadline() < 3:
            sent += messages_to(self.m.tick(self.m.next_deadline()), ("10.0.1.0", 7000))
        self.assertIn(self.EVIL, sent)  # news now, for the others to check in turn

    def test_a_member_verified_after_an_idle_round_is_news_at_once(self):
        while self.m.next_deadline() < 5:
            self.m.tick(self.m.next_deadline())
        ((address, ping),) = self.claim(5, self.EVIL)  # that tick had nothing to gossip
        self.m.receive(5.01, address, datagram("evil", Ack(ping.seq)))
        self.assertEqual(self.m.next_deadline(), 5.01)
        self.assertIn(self.EVIL, messages_to(self.m.tick(5.01)))

    def test_a_verification_ping_carries_no_news(self):
        self.m.receive(0, ("h", 1), datagram("y", Suspect("x", 1, "y")))  # news, to piggyback elsewhere
        self.m.receive(1, ("10.0.1.0", 7000), datagram("x", self.EVIL))
        (ping,) = [item for item in self.m.tick(1) if item.address == ("10.6.6.6", 7666)]
        self.assertEqual([type(msg) for msg in messages_to([ping])], [Ping])  # the address may be anyone's

    def test_a_claimed_member_that_never_answers_is_dropped(self):
        self.assertEqual(len(self.claim(0, self.EVIL)), 1)
        pings = 1
        now = 0.0
        while self.m.pending_candidates():
            now = self.m.next_deadline()
            pings += len(verification_pings(self.m.tick(now)))
        self.assertEqual(pings, CONFIG.verify_window / CONFIG.probe_timeout)  # at once and every probe timeout
        self.assertAlmostEqual(now, CONFIG.verify_window)
        self.assertEqual((sorted(self.m.members), self.m.stats.candidates_dropped), (["me", "x"], 1))

    def test_a_push_pull_state_is_checked_too_unless_converged(self):
        self.m.merge_state(1, [self.EVIL])
        self.assertEqual((sorted(self.m.members), self.m.pending_candidates()), (["me", "x"], 1))
        ((address, ping),) = verification_pings(self.m.tick(self.m.next_deadline()))
        self.assertEqual(address, ("10.6.6.6", 7666))
        self.m.merge_state(2, [Alive("trusted", 1, "10.0.3.1", 1, 1)], converged=True)
        self.assertIn("trusted", self.m.members)

    def test_the_candidates_are_bounded_and_the_oldest_make_way(self):
        claims = [Alive("n%02d" % i, 1, "10.7.0.%d" % i, 7000, 7000) for i in range(CONFIG.max_candidates + 6)]
        pings = []
        for start in range(0, len(claims), 10):
            pings += self.claim(1, *claims[start:start + 10])
        self.assertEqual(len(pings), len(claims))
        self.assertEqual((self.m.pending_candidates(), self.m.stats.candidates_dropped), (CONFIG.max_candidates, 6))
        for address, ping in pings:
            self.m.receive(1.01, address, datagram(ping.target, Ack(ping.seq)))
        taken = sorted(n for n in self.m.members if n.startswith("n"))
        self.assertEqual(taken, [c.name for c in claims[6:]])

    def test_a_newer_claim_of_a_waiting_candidate_is_what_is_taken_on(self):
        ((address, ping),) = self.claim(1, self.EVIL)
        self.m.receive(1.1, ("10.0.1.0", 7000), datagram("x", self.EVIL._replace(incarnation=10**12 + 5, api_port=9)))
        self.assertEqual(self.m.pending_candidates(), 1)
        self.m.receive(1.2, address, datagram("evil", Ack(ping.seq)))
        self.assertEqual((self.m.members["evil"].incarnation, self.m.members["evil"].api_port), (10**12 + 5, 9))


class LifeguardTests(SynchronousTestCase):
    def test_suspicion_shrinks_with_independent_confirmations(self):
        s = Suspicion(10.0, "a", k=3, min_timeout=3.0, max_timeout=18.0)
        timeouts = [s.timeout]
        for accuser in ("b", "b", "c", "d", "e"):
            s.confirm(accuser)
            timeouts.append(s.timeout)
        self.assertEqual(timeouts[0], 18.0)
        self.assertEqual(timeouts[1], timeouts[2])  # the same accuser twice counts once
        self.assertTrue(timeouts[2] > timeouts[3] > timeouts[4] == 3.0 == timeouts[5])
        self.assertEqual(s.deadline, 13.0)

    def test_without_confirmations_to_wait_for_the_minimum_applies(self):
        self.assertEqual(Suspicion(0, "a", k=0, min_timeout=2, max_timeout=12).timeout, 2)

    def test_local_health_is_bounded_and_scales_timeouts(self):
        h = LocalHealth(8)
        h.adjust(-3)
        self.assertEqual(h.score, 0)
        h.adjust(20)
        self.assertEqual((h.score, h.scale(0.5)), (7, 4.0))
