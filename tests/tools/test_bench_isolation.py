"""Each row of the benchmark measured alone: the other systems paused meanwhile, the load
generator's CPU share, the etcd member driven, and ``--check``'s verdict."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest

import gossipdht.tools.bench as bench
import gossipdht.tools.bench.__main__ as cli
from gossipdht.tools.bench import Measurement, Settings, Unavailable, aggregate, etcd, measure_alone
from gossipdht.tools.bench.check import format_check, spread, verdict
from gossipdht.tools.bench.cputime import run_timed
from gossipdht.tools.bench.isolation import System, alone, paused
from gossipdht.tools.localcluster import wait_for

SETTINGS = Settings(rounds=3, seconds=1, warmup=1, preload=10, data=Path("none.tsv"))


class Signals:
    """A stand-in for ``os.kill`` that records what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def __call__(self, pid: int, signum: int) -> None:
        self.sent.append((pid, signal.Signals(signum).name))


def system(name: str, *pids: int, settle=lambda: None) -> System:
    return System(name, pids, settle)


# -- pausing ---------------------------------------------------------------------------------------


def test_alone_pauses_every_other_system_and_resumes_them_after():
    kill = Signals()
    measured, others = system("etcd", 1, 2, 3), [system("cluster", 4, 5), system("bare", 6)]
    with alone(measured, [*others, measured], kill):
        assert kill.sent == [(pid, "SIGSTOP") for pid in (4, 5, 6)]
    assert kill.sent[3:] == [(pid, "SIGCONT") for pid in (4, 5, 6)]


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError, Unavailable])
def test_paused_systems_resume_however_the_block_ends(error):
    kill = Signals()
    with pytest.raises(error), paused([system("a", 1), system("b", 2)], kill):
        raise error("interrupted")
    assert [s for _, s in kill.sent] == ["SIGSTOP", "SIGSTOP", "SIGCONT", "SIGCONT"]


def test_a_system_that_does_not_settle_is_not_measured_and_the_others_resume(monkeypatch):
    monkeypatch.setattr(bench, "wait_until_quiet", lambda: pytest.fail("waited for a quiet machine in vain"))

    def unsettled() -> None:
        raise Unavailable("the cluster did not settle")
    kill = Signals()
    monkeypatch.setattr(bench, "alone", lambda s, systems: alone(s, systems, kill))
    result = measure_alone(system("cluster", 1, settle=unsettled), [system("etcd", 2)],
                           lambda: pytest.fail("measured"), print)
    assert str(result) == "the cluster did not settle"
    assert kill.sent == [(2, "SIGSTOP"), (2, "SIGCONT")]


def test_a_generator_over_80_percent_of_a_core_is_warned_about(monkeypatch):
    monkeypatch.setattr(bench, "wait_until_quiet", lambda: True)
    said: list[str] = []
    busy = measure_alone(system("bare"), [system("bare")], lambda: Measurement(100, 1.0, generator_cpu=0.85),
                         said.append)
    assert busy.generator_cpu == 0.85
    assert said == ["warning: the load generator used 85% of a core: it may be what limits the rate"]
    said.clear()
    measure_alone(system("bare"), [system("bare")], lambda: Measurement(100, 1.0, generator_cpu=0.8), said.append)
    assert said == []


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()[0]


@pytest.mark.integration
def test_paused_processes_are_stopped_and_run_again_after():
    with ExitStack() as stack:
        sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
        for process in sleepers:
            stack.callback(process.wait)
            stack.callback(process.kill)
        pids = tuple(process.pid for process in sleepers)
        with pytest.raises(KeyboardInterrupt), paused([System("sleepers", pids, lambda: None)]):
            wait_for(lambda: all(state(pid) == "T" for pid in pids), 10)
            raise KeyboardInterrupt
        wait_for(lambda: all(state(pid) == "S" for pid in pids), 10)


@pytest.mark.integration
def test_a_cluster_paused_past_its_failure_detectors_timeouts_settles_with_every_member_alive(tmp_path):
    """Paused together, the members see no time pass for one another: once resumed, each
    sees every other alive, which is what ``settle`` waits for before a row is measured."""
    with ExitStack() as stack:
        nodes = bench.start_cluster(stack, tmp_path, replicas=3)
        cluster = bench.cluster_system("cluster", nodes)
        with paused([cluster]):
            wait_for(lambda: all(state(pid) == "T" for pid in cluster.pids), 10)
            assert not bench.members_alive(nodes[0], 3)  # stopped: it does not answer
            # A pause that lasts is what is tested: past a probe's window (1 s) and a
            # suspicion's shortest timeout (3 s); there is no event to wait for.
            time.sleep(4)
        cluster.settle()
        assert all(bench.members_alive(node, 3) for node in nodes)


# -- the load generator's CPU share ---------------------------------------------------------------


def test_run_timed_measures_the_cpu_time_of_the_child_alone():
    burn = "import time\nwhile time.process_time() < 0.3: pass\nprint('done')"
    busy = run_timed([sys.executable, "-c", burn], 60)
    assert (busy.status, busy.stdout) == (0, "done\n")
    assert 0.3 <= busy.cpu_seconds <= busy.seconds + 0.05  # one thread: at most one core
    idle = run_timed(["sleep", "0.3"], 60)
    assert idle.cpu_seconds < 0.1 and idle.seconds >= 0.3
    failed = run_timed([sys.executable, "-c", "import sys; print('out'); sys.exit('broken')"], 60)
    assert (failed.status, failed.stdout, failed.last_line()) == (1, "out\n", "broken")


def test_run_timed_kills_a_child_past_its_timeout():
    with pytest.raises(subprocess.TimeoutExpired):
        run_timed(["sleep", "30"], 0.2)


def test_rounds_report_the_generators_median_share_and_each_rounds_rate():
    rounds = [Measurement(1000, 1.0, generator_cpu=0.2), Measurement(3000, 1.0, generator_cpu=0.9),
              Measurement(2000, 1.0, generator_cpu=0.3), Unavailable("etcd: no leader")]
    row = aggregate("GET", rounds)
    assert (row.generator_cpu, row.rates) == (0.3, (1000.0, 3000.0, 2000.0))


# -- the etcd member driven ------------------------------------------------------------------------


def test_etcd_rows_name_the_member_and_whether_it_stayed_the_leader(monkeypatch):
    members = etcd.Members(ports=(11, 12, 13), pids=(1, 2, 3))
    leaders = iter([12, 12, 12, 11])  # m2 leads, then m1
    monkeypatch.setattr(etcd, "leader", lambda m: next(leaders))
    monkeypatch.setattr(bench, "warmed", lambda url, *args: Measurement(100, 1.0, generator_cpu=0.1))
    first = bench.on_etcd(SETTINGS, members, 1, lambda phase: [])
    follower = bench.on_etcd(replace(SETTINGS, etcd_member="follower"), members, 2, lambda phase: [])
    assert (first.via, follower.via) == ("m2 (leader)", "m1 (follower, leader at the end)")
    row = aggregate("etcd GET", [first, first, follower])
    assert row.via == "m2 (leader) in 2 of 3 rounds, m1 (follower, leader at the end) in 1 of 3 rounds"
    assert aggregate("etcd GET", [first, first]).via == "m2 (leader)"


def test_the_etcd_member_is_an_option_and_the_leader_by_default():
    assert cli.parse_settings([])[0].etcd_member == "leader"
    assert cli.parse_settings(["--etcd-member", "follower"])[0].etcd_member == "follower"


# -- --check ---------------------------------------------------------------------------------------


def test_the_noise_is_the_spread_of_the_rounds():
    assert spread([90.0, 100.0, 110.0]) == pytest.approx(0.2)
    assert spread([100.0]) is None


def test_the_check_agrees_within_the_noise_and_not_beyond_it():
    alone = [6400.0, 6800.0, 6600.0]  # spread 400 / 6600: 6.1 %
    close = verdict(alone, [6500.0, 6300.0, 6450.0])
    assert close["agree"] and close["noise"] == pytest.approx(400 / 6600)
    assert close["difference"] == pytest.approx(6450 / 6600 - 1)
    far = verdict(alone, [3600.0, 3618.0, 3500.0])
    assert far["agree"] is False
    assert verdict([6400.0], [6500.0])["agree"] is None  # one round: no spread to judge by


def test_check_names_a_row_of_the_table(capsys):
    settings, args = cli.parse_settings(["--check", "etcd GET"])
    assert args.check == "etcd GET"
    with pytest.raises(SystemExit):
        cli.parse_settings(["--check", "etcd"])
    assert "no row is named 'etcd'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_settings(["--check", "GET", "--security"])


def test_the_check_prints_both_rates_and_its_verdict():
    def report(rates):
        row = aggregate("GET", [Measurement(int(rate), 1.0, p50_ms=1.0, p99_ms=2.0) for rate in rates])
        return bench.build_report([row], {"date": "d", "cores": 2, "python": "3", "wrk": "4", "rounds": len(rates),
                                          "seconds": 1, "warmup_seconds": 1, "connections": 16, "command": "c"})
    alone, full = [6400.0, 6800.0, 6600.0], [6500.0, 6300.0, 6450.0]
    text = format_check({"row": "GET", "alone": report(alone), "full": report(full), "verdict": verdict(alone, full)})
    assert text.splitlines()[-2:] == [
        "check GET: alone 6,600 req/s (rounds 6,400-6,800), in the full run 6,450 req/s (rounds 6,300-6,500)",
        "  difference -2.3%, noise 6.1% (the wider spread of the rounds: highest less lowest, over the median): agree",
    ]
