"""Whole clusters of real gossip cores in the deterministic simulator (small N, fast)."""

import json

from gossipdht.membership.member import State
from gossipdht.membership.sim import Simulation, main, parse_args, run


def test_join_reaches_every_node_quickly():
    sim = Simulation(30, seed=3)
    sim.run_until(2)
    newcomer = sim.join("newcomer")
    sim.run_until(5)
    knowers = sim.alive_known["newcomer"]
    assert set(knowers) >= {n.core.name for n in sim.nodes.values() if n is not newcomer}
    assert max(knowers.values()) - 2 < 2.0
    assert len(newcomer.core.live_members()) == 31


def test_crash_is_detected_by_everyone_without_false_positives():
    sim = Simulation(30, seed=4, loss=0.05)
    sim.run_until(2)
    (victim,) = sim.crash(1)
    sim.run_until(20)
    live = [n for n in sim.nodes.values() if n.running]
    assert all(n.core.members[victim].state is State.DEAD for n in live)
    assert sim.false_positives(sim.live_names()) == 0


def test_stalls_and_loss_cause_no_false_positives():
    sim = Simulation(30, seed=5, loss=0.1, stall_fraction=0.1, stall_seconds=2, stall_every=5)
    sim.run_until(60)
    assert sim.false_positives(sim.live_names()) == 0
    assert sum(n.core.stats.stalls_noticed for n in sim.nodes.values()) > 0  # stalls happened
    assert all(len(n.core.live_members()) == 30 for n in sim.nodes.values())


def test_a_node_restarted_with_incarnation_zero_comes_back():
    sim = Simulation(20, seed=6)
    sim.run_until(1)
    (victim,) = sim.crash(1)
    sim.run_until(15)
    reborn = sim.restart(victim)  # same name, a fresh core: incarnation 0 again
    sim.run_until(20)
    assert reborn.core.incarnation > 0  # it refuted its own death
    assert all(n.core.members[victim].state is State.ALIVE for n in sim.nodes.values() if n.running)


def test_same_seed_same_results_and_json_keys(capsys):
    args = ["crash", "--nodes", "25", "--duration", "12", "--seed", "9", "--json"]
    main(args)
    first = json.loads(capsys.readouterr().out)
    main(args)
    second = json.loads(capsys.readouterr().out)
    first.pop("wall_seconds"), second.pop("wall_seconds")
    assert first == second
    assert {"informed_at", "detection", "false_positives", "msgs_per_node_per_s", "bytes_per_node_per_s"} <= set(first)
    assert first["detection"][0]["all_dead"] is not None


def test_join_reports_percentiles():
    results = run(parse_args(["join", "--nodes", "40", "--loss", "0.25", "--duration", "6"]))
    times = results.informed_at
    assert set(times) == {"50", "99", "99.99", "100"}
    assert times["50"] <= times["99"] <= times["99.99"] <= times["100"] < 6


def test_a_healed_partition_merges_back():
    sim = Simulation(30, seed=8, loss=0.05)
    sim.run_until(2)
    island = {f"node-{i:04d}" for i in range(10)}
    sim.partition(island)
    sim.run_until(40)  # long enough for each side to declare the other dead
    mainland = next(n for n in sim.nodes.values() if n.core.name not in island)
    assert all(mainland.core.members[name].state is State.DEAD for name in island)
    sim.heal()
    sim.run_until(130)
    assert all(len(n.core.live_members()) == 30 for n in sim.nodes.values())
