"""The pure parts of ``gossipdht.tools.bench``, and its etcd scripts where etcd and wrk are installed."""

from __future__ import annotations

import json
import re
import shutil
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import pytest

import gossipdht.tools.bench as bench
import gossipdht.tools.bench.__main__ as cli
from gossipdht.tools.bench import (
    CONNECTIONS,
    SCRIPTS,
    Measurement,
    Row,
    Settings,
    Unavailable,
    aggregate,
    build_report,
    etcd,
    format_table,
    operations,
    parse_loader,
    parse_wrk,
    run_wrk,
    start_etcd_preloaded,
)
from gossipdht.tools.bench.postal import postal_data, postal_lines, prefixed_copy

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8080/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.31ms  215.45us   5.95ms   91.93%
  119912 requests in 10.10s, 14.98MB read
  Non-2xx or 3xx responses: 12
Requests/sec:  11872.48
Transfer/sec:      1.48MB
BENCH {"requests": 119912, "seconds": 10.100000, "errors": 15, "status_errors": 12, "p50_ms": 1.302, "p99_ms": 2.750}
"""

META = {"date": "2024-01-02 03:04 UTC", "cores": 2, "python": "3.11.7", "wrk": "4.1.0", "rounds": 3,
        "seconds": 10, "warmup_seconds": 2, "connections": 16, "command": "python -m gossipdht.tools.bench"}


def row(operation: str, rate: float | None, requests: int = 1000, errors: int = 0, note: str = "",
        cpu: float | None = None, via: str = "") -> Row:
    return Row(operation, rate, 1.5 if rate else None, 9.25 if rate else None, requests, errors, 0, note, cpu, via)


# -- wrk and loader output --------------------------------------------------------------------


def test_parse_wrk_reads_the_bench_line():
    m = parse_wrk(WRK_OUTPUT)
    assert m == Measurement(requests=119912, seconds=10.1, errors=15, status_errors=12, p50_ms=1.302, p99_ms=2.75)
    assert m.rate == pytest.approx(11872.47, abs=0.01)


def test_parse_wrk_without_a_bench_line_fails():
    with pytest.raises(ValueError):
        parse_wrk(WRK_OUTPUT.replace("BENCH ", ""))


def test_report_lua_prints_every_field_parse_wrk_reads():
    """The Lua side and the Python side must agree on the line's name and fields."""
    lua = (SCRIPTS / "report.lua").read_text()
    printed = set(re.findall(r'\\?"(\w+)\\?": %', lua))
    assert printed == set(json.loads(WRK_OUTPUT.splitlines()[-1][len("BENCH "):]))
    assert "'BENCH {" in lua


@pytest.mark.parametrize("script", ["static.lua", "put.lua", "get.lua", "load.lua", "etcd.lua"])
def test_every_script_reports(script):
    assert 'report.lua")' in (SCRIPTS / script).read_text()


def test_parse_loader_reads_its_last_line():
    output = "loading postal.tsv through 127.0.0.1:8080\n16710 keys in 0.52 s: 32,135 keys/s\n"
    m = parse_loader(output)
    assert (m.requests, m.seconds, m.p50_ms, m.p99_ms) == (16710, 0.52, None, None)
    assert m.rate == pytest.approx(32134.6, abs=0.1)


def test_parse_loader_counts_keys_not_stored_as_errors():
    m = parse_loader("not stored: 18600: only 0 of 2 replicas\n16700 keys in 2.00 s: 8,350 keys/s, 10 not stored\n")
    assert (m.requests, m.errors, m.seconds) == (16710, 10, 2.0)
    assert not aggregate("postal load", [m]).flagged
    assert aggregate("postal load", [parse_loader("100 keys in 1.00 s: 100 keys/s, 5 not stored")]).flagged


@pytest.mark.parametrize("output", ["", "16710 keys in 0.52 s\nerror: node went away\n", "done\n"])
def test_parse_loader_refuses_other_last_lines(output):
    with pytest.raises(ValueError):
        parse_loader(output)


# -- rounds ---------------------------------------------------------------------------------------


def test_aggregate_takes_each_metric_median_and_sums_errors():
    rounds = [
        Measurement(1000, 1.0, errors=1, status_errors=1, p50_ms=3.0, p99_ms=30.0),
        Measurement(3000, 1.0, errors=0, p50_ms=1.0, p99_ms=90.0),
        Measurement(2000, 1.0, errors=2, status_errors=0, p50_ms=2.0, p99_ms=10.0),
    ]
    r = aggregate("PUT", rounds)
    assert (r.rate, r.p50_ms, r.p99_ms) == (2000.0, 2.0, 30.0)
    assert (r.requests, r.errors, r.status_errors, r.note) == (6000, 3, 1, "")
    assert not r.flagged


def test_aggregate_of_an_even_number_of_rounds_averages_the_middle_two():
    r = aggregate("GET", [Measurement(100, 1.0, p50_ms=1.0, p99_ms=2.0), Measurement(300, 1.0, p50_ms=3.0, p99_ms=4.0)])
    assert (r.rate, r.p50_ms, r.p99_ms) == (200.0, 2.0, 3.0)


def test_aggregate_flags_more_than_one_percent_of_errors():
    assert aggregate("PUT", [Measurement(1000, 1.0, errors=11)]).flagged
    assert not aggregate("PUT", [Measurement(1000, 1.0, errors=10)]).flagged


def test_aggregate_notes_rounds_that_could_not_measure():
    partly = aggregate("load", [Unavailable("timeout"), Measurement(500, 1.0)])
    assert partly.rate == 500.0
    assert partly.note == "n/a in 1 of 2 rounds: timeout"
    never = aggregate("load", [Unavailable("no loader"), Unavailable("no loader")])
    assert (never.rate, never.p50_ms, never.requests) == (None, None, 0)
    assert never.note == "n/a: no loader"


def test_report_ratios_are_to_the_first_rows_median():
    report = build_report([row("baseline GET", 2000.0), row("PUT", 900.0), row("load", None, note="n/a: x")], META)
    assert report["meta"]["A"] == 2000.0
    assert "median baseline GET" in report["meta"]["A_is"]
    assert [r["ratio"] for r in report["rows"]] == [1.0, 0.45, None]
    json.dumps(report)  # --json prints it as it is


# -- the table ------------------------------------------------------------------------------------


def table_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("operation"))
    return lines[start:start + 5]


def test_format_table():
    rows = [row("baseline GET", 12345.6, cpu=0.5), row("PUT", 5555.5, requests=1000, errors=20, cpu=0.14),
            row("GET", 6172.8, requests=1000, errors=3, cpu=0.81, via="m2 (leader)"),
            row("postal load (N=2)", None, note="n/a: no loader")]
    text = format_table(build_report(rows, META))
    assert "2024-01-02 03:04 UTC" in text and "2 cores" in text and "Python 3.11.7" in text and "wrk 4.1.0" in text
    assert "3 round(s) of 10 s" in text and "A = 12,346 req/s" in text
    header, base, put, get, load = table_lines(text)
    assert header.split() == ["operation", "req/s", "p50", "ms", "p99", "ms", "ratio", "gen", "CPU", "errors"]
    assert base.split() == ["baseline", "GET", "12,346", "1.50", "9.25", "1.00", "A", "50%", "0"]
    assert put.split() == ["PUT", "5,556", "1.50", "9.25", "0.45", "A", "14%", "20", "(2.0%)", "!"]
    assert get.split() == ["GET", "6,173", "1.50", "9.25", "0.50", "A", "81%", "!", "3", "(0.3%)"]
    assert load.split() == ["postal", "load", "(N=2)", "n/a"]
    ends = {line.rindex(cell) + len(cell) for line, cell in [(header, "ratio"), (base, "1.00 A"), (put, "0.45 A")]}
    assert len(ends) == 1  # right-aligned under the header
    assert "more than 1% of the requests failed" in text
    assert "the load generator used more than 80% of a core" in text
    assert "GET: driven through m2 (leader)" in text
    assert "postal load (N=2): n/a: no loader" in text
    assert text.splitlines()[-1] == "reproduce: python -m gossipdht.tools.bench"


def test_format_table_without_errors_has_no_error_note():
    text = format_table(build_report([row("baseline GET", 100.0, cpu=0.8), row("PUT", 50.0)], META))
    assert "failed" not in text
    assert "of a core: it may be" not in text and ": driven through" not in text


# -- data -----------------------------------------------------------------------------------------


def test_postal_lines_have_the_shape_of_the_postal_data():
    lines = postal_lines()
    assert len(lines) == 16_710
    assert all(line.count("\t") == 1 for line in lines)
    keys = [line.split("\t")[0] for line in lines]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[1-9]\d{4}", key) for key in keys)
    values = [line.split("\t")[1] for line in lines]
    assert all(2 <= len(value) <= 30 for value in values)
    assert 100 < len(set(values)) < len(values)  # localities shared by several codes
    assert any(not value.isascii() for value in values)  # UTF-8, as the Swedish names are
    assert postal_lines(100) == postal_lines(100)


def test_postal_data_generates_a_file_only_when_the_given_one_is_absent(tmp_path):
    given = tmp_path / "given.tsv"
    given.write_text("11111\tA\n", encoding="utf-8")
    assert postal_data(given, tmp_path) == given
    generated = postal_data(tmp_path / "absent.tsv", tmp_path)
    assert generated.parent == tmp_path
    assert generated.read_text(encoding="utf-8").splitlines() == postal_lines()


def test_prefixed_copy_prefixes_every_key(tmp_path):
    source = tmp_path / "rows.tsv"
    source.write_text("11111\tÅhus\n22222\tKnivsta\tx\n", encoding="utf-8")
    copy = prefixed_copy(source, tmp_path / "r2.tsv", "load-r2-")
    assert copy.read_text(encoding="utf-8") == "load-r2-11111\tÅhus\nload-r2-22222\tKnivsta\tx\n"


# -- the command line -----------------------------------------------------------------------------


def test_quick_changes_the_defaults_and_options_win():
    quick, args = cli.parse_settings(["--quick", "--json"])
    full, full_args = cli.parse_settings([])
    assert args.json and not full_args.json
    assert (args.large, full_args.large) == (100_000, 1_000_000)
    assert (quick.rounds, quick.seconds, quick.warmup) == (1, 3, 1) and quick.preload < full.preload
    assert (full.rounds, full.seconds) == (3, 10)
    chosen, _ = cli.parse_settings(["--quick", "--rounds", "2", "--seconds", "5"])
    assert (chosen.rounds, chosen.seconds) == (2, 5)
    assert chosen.command == "python -m gossipdht.tools.bench --quick --rounds 2 --seconds 5"


def test_scale_and_idle_are_separate_runs(capsys):
    with pytest.raises(SystemExit):
        cli.parse_settings(["--scale", "--idle"])
    assert "not allowed with" in capsys.readouterr().err


def test_the_scale_report_reads_as_ratios():
    from gossipdht.tools.bench.scale import format_scale

    rate = lambda r, p99=20.0: {"rate": r, "p50_ms": 5.0, "p99_ms": p99, "errors": 0}  # noqa: E731
    report = {
        "keys": [100, 1000], "drop": {"PUT": 0.25, "GET": -0.1},
        "rates": {"100": {"PUT": rate(2000), "GET": rate(3000)},
                  "1000": {"PUT": rate(1500, p99=472.0), "GET": rate(3300)}},
        "fourth_node": {"replicas_before": 3000, "records_moved": 825, "ideal": 750.0, "moved_to_ideal": 1.1,
                        "seconds": 2.0, "join_answered_seconds": 1.5, "records_per_second": 412.5,
                        "keys_held": [750, 750, 750, 750],
                        "reads_meanwhile": {"requests": 10, "errors": 0, "p50_ms": 1.0, "p99_ms": 2.0}},
    }
    text = format_scale(report)
    assert "-25%" in text and "+10%" in text and "1.10 x ideal" in text and "412 records/s" in text
    assert re.search(r"p99 20 ms +1,500/s p99 472 ms", text)  # wide figures keep their columns apart


def test_the_scale_rates_take_turns_between_the_clusters(monkeypatch):
    from gossipdht.tools.bench import scale

    class Node:
        def __init__(self, port):
            self.port, self.pid = port, None

        def url(self, path):
            return f"http://127.0.0.1:{self.port}{path}"

    calls = []

    def warmed(url, script, settings, round_, args):
        calls.append((round_, url, script, args("r")))
        return Measurement(requests=1000 if ":1/" in url else 700, seconds=1.0)

    monkeypatch.setattr(scale, "warmed", warmed)
    alone = []
    monkeypatch.setattr(scale, "measure_alone",
                        lambda system, systems, measure, progress: alone.append(system.name) or measure())
    settings = Settings(rounds=3, seconds=1, warmup=1, preload=10, data=None)
    small, large = scale.single_key_rates(settings, [([Node(1)], 100), ([Node(2)], 1000)])
    assert alone[:2] == ["cluster of 100 keys"] * 2 and alone[2:4] == ["cluster of 1,000 keys"] * 2
    ports = [(round_, url.split(":")[2][0]) for round_, url, script, _ in calls if script == "put.lua"]
    assert ports == [(1, "1"), (1, "2"), (2, "2"), (2, "1"), (3, "1"), (3, "2")]
    assert ("get.lua", ["1000"]) in [(script, args) for _, url, script, args in calls if ":2/" in url]
    assert (small["PUT"]["rate"], large["GET"]["rate"]) == (1000, 700)


def test_without_wrk_the_command_says_so_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(cli, "wrk_path", lambda: None)
    monkeypatch.setattr(cli, "run", lambda *args: pytest.fail("ran without wrk"))
    assert cli.main(["--quick"]) == 2
    assert capsys.readouterr().err.strip() == "wrk not found: apt-get install wrk"


def test_the_sync_full_put_row_stands_before_etcds_and_writes_to_the_full_sync_cluster(monkeypatch, tmp_path):
    import gossipdht.tools.bench as bench
    from gossipdht.tools.nodeprocess import NodeProcess

    clusters = {name: [NodeProcess(tmp_path / name / str(i), port=9000 + 10 * n + i) for i in range(3)]
                for n, name in enumerate(bench.CLUSTERS)}
    settings = Settings(rounds=1, seconds=1, warmup=1, preload=10, data=tmp_path / "none.tsv")
    started = bench.Started(ports={"bare": 1, "quiet": 2, "klein": 3}, clusters=clusters)
    ops = operations(settings, tmp_path, started, tmp_path / "postal.tsv")
    names = [op.name for op in ops]
    assert names == bench.row_names(settings)
    assert names[names.index("etcd PUT") - 1] == "PUT (sync full)"
    urls = []
    monkeypatch.setattr(bench, "warmed", lambda url, script, *args, **kwargs: urls.append((url, script)))
    sync_full = ops[names.index("PUT (sync full)")]
    sync_full.measure(1)
    assert urls == [(clusters["full-sync-cluster"][0].url("/db/"), "put.lua")]
    assert sync_full.system == "full-sync-cluster"


# -- etcd, the reference ------------------------------------------------------------------------


def test_without_etcd_its_rows_say_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(etcd, "etcd_path", lambda: None)
    with ExitStack() as stack:
        missing = start_etcd_preloaded(stack, tmp_path, 10)
    assert isinstance(missing, Unavailable)
    assert aggregate("etcd PUT", [missing]).note == "n/a: etcd not found: apt-get install etcd-server"


@pytest.mark.skipif(etcd.etcd_path() is None or shutil.which("wrk") is None, reason="needs etcd and wrk")
def test_etcd_lua_writes_and_reads_the_keys_python_encodes(tmp_path):
    """etcd's gateway takes base64: the script's encoder must agree with Python's, or the
    PUT row writes other keys and the GET row measures misses (answered 200 all the same)."""
    with ExitStack() as stack:
        members = start_etcd_preloaded(stack, tmp_path, 50)
        assert not isinstance(members, Unavailable), members
        port = etcd.choose(members, "follower")
        assert port != etcd.choose(members, "leader") == etcd.leader(members)
        assert etcd.value(port, "bench-pre-7") == f"{7:016x}"
        url = f"http://127.0.0.1:{port}"
        written = run_wrk(url, "etcd.lua", 1, ["put", "t-x"])
        assert written.requests > 0 and written.errors == 0
        # Keys t-x-2 on (wrk's first request() is a probe), and those still in flight at the end.
        assert written.requests <= etcd.count(port, "t-x-") <= written.requests + CONNECTIONS
        assert etcd.value(port, "t-x-2") == f"{2:08x}{2 * 2654435761 % 2**32:08x}"
        assert run_wrk(url, "etcd.lua", 1, ["get", "50"]).errors == 0


def test_reference_servers_start_and_the_klein_dict_holds_the_preloaded_keys(tmp_path):
    import http.client

    from gossipdht.tools.bench import preloaded, start_baseline

    with ExitStack() as stack:
        ports = {kind: start_baseline(stack, tmp_path, kind, 3)[0] for kind in ("bare", "quiet", "klein")}

        def ask(kind: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
            connection = http.client.HTTPConnection("127.0.0.1", ports[kind], timeout=10)
            try:
                connection.request(method, path, body)
                answer = connection.getresponse()
                return answer.status, answer.read()
            finally:
                connection.close()

        assert ask("bare", "GET", "/") == ask("quiet", "GET", "/x") == (200, b"value")
        key, value = preloaded(2)
        assert ask("klein", "GET", f"/db/{key}") == (200, value.encode())
        assert ask("klein", "GET", f"/db/{preloaded(3)[0]}")[0] == 404
        assert ask("klein", "PUT", "/db/new", b"v")[0] == 204
        assert ask("klein", "GET", "/db/new") == (200, b"v")


def fake_stat(samples: list[tuple[int, int]]):
    """``/proc/stat`` read by read: each read the next cumulative (busy, total) ticks."""
    left = iter(samples)

    def read() -> str:
        busy, total = next(left)
        return f"cpu  {busy} 0 0 {total - busy} 0 0 0 0 0 0\ncpu0 1 2 3 4\n"

    return read


def test_cpu_times_reads_busy_and_total_ticks():
    from gossipdht.tools.bench.cputime import cpu_times

    assert cpu_times("cpu  10 1 5 80 4 0 0 0 0 0\ncpu0 1 2 3 4\n") == (16, 100)


def test_wait_until_quiet_waits_for_a_sample_under_the_quiet_share():
    from gossipdht.tools.bench.cputime import QUIET_SHARE, wait_until_quiet

    quiet_busy = int(QUIET_SHARE * 100) - 1
    half, half_again, quiet = ((0, 0), (50, 100)), ((50, 100), (100, 200)), ((100, 200), (100 + quiet_busy, 300))
    slept: list[float] = []
    assert wait_until_quiet(1.0, 10.0, fake_stat([*half, *half_again, *quiet]), slept.append)
    assert slept == [1.0, 1.0, 1.0]
    always_busy = [(100 * i, 100 * i) for i in range(20)]
    slept.clear()
    assert not wait_until_quiet(1.0, 3.0, fake_stat(always_busy), slept.append)
    assert slept == [1.0, 1.0, 1.0]


def test_wait_until_quiet_without_proc_stat_does_not_wait():
    from gossipdht.tools.bench.cputime import wait_until_quiet

    def missing() -> str:
        raise FileNotFoundError("/proc/stat")

    assert not wait_until_quiet(1.0, 10.0, missing, lambda s: None)


def test_the_metrics_report_shows_each_rate_as_a_share_of_the_cluster_without_metrics():
    from gossipdht.tools.bench.metrics import format_metrics

    rows = [asdict(row(f"{operation} metrics {state}", rate)) for operation, state, rate in
            (("PUT", "on", 970.0), ("PUT", "off", 1000.0), ("GET", "off", 2000.0), ("GET", "on", 2010.0))]
    lines = format_metrics({"rows": rows, "scrape_ms": 3.25, "rounds": 5, "seconds": 10,
                            "preloaded_keys": 10_000}).splitlines()
    assert "of metrics off" in lines[0]
    shares = {line[:28].strip(): line.split()[4] for line in lines[1:5]}
    assert shares == {"PUT metrics on": "0.970", "PUT metrics off": "1.000", "GET metrics off": "1.000",
                      "GET metrics on": "1.005"}
    assert lines[5] == "a scrape of /metrics: 3.2 ms (median of 20, a new connection each)"


@pytest.mark.parametrize("run, other", [("metrics", "security"), ("overload", "metrics")])
def test_metrics_security_and_overload_are_separate_runs(capsys, run, other):
    _, args = cli.parse_settings([f"--{run}", "--quick"])
    assert getattr(args, run)
    with pytest.raises(SystemExit):
        cli.parse_settings([f"--{run}", f"--{other}"])
    assert "not allowed with" in capsys.readouterr().err


def test_variant_rows_show_the_clusters_cpu_a_request_as_a_share_of_the_yardsticks_too():
    from dataclasses import replace as changed

    from gossipdht.tools.bench.variants import format_rows

    rows = [asdict(changed(row(f"PUT {variant}", 1000.0), system_cpu_us=cpu))
            for variant, cpu in (("plain", 400.0), ("keyed", 410.0), ("unknown", None))]
    lines = format_rows(rows, "plain")
    assert "CPU us/req" in lines[0]
    cells = {line[:28].strip(): line.split()[7:9] for line in lines[1:]}
    assert cells == {"PUT plain": ["400", "1.000"], "PUT keyed": ["410", "1.025"], "PUT unknown": ["-", "-"]}


def test_warmed_given_pids_counts_their_cpu_over_the_measured_run_alone(monkeypatch):
    times = iter([10.0, 10.5])  # the pid's CPU seconds before and after the measured run
    runs = []
    monkeypatch.setattr(bench, "cpu_seconds", lambda pid: next(times))
    monkeypatch.setattr(bench, "run_wrk", lambda url, script, seconds, *args: runs.append(seconds) or Measurement(1000, 1.0))
    settings = bench.Settings(rounds=1, seconds=3, warmup=1, preload=10, data=Path("-"))
    measured = bench.warmed("http://n/db/", "put.lua", settings, 1, pids=[123])
    assert runs == [1, 3] and measured.system_cpu_us == pytest.approx(500.0)
    assert bench.warmed("http://n/db/", "put.lua", settings, 1).system_cpu_us is None


def test_the_fixed_node_client_sends_every_key_to_its_node_and_the_report_shows_hops():
    from gossipdht.client.routing import ClusterView, Member
    from gossipdht.core.address import Address
    from gossipdht.tools.bench.client import _client, format_client

    seeds = ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
    fixed, aware = _client(seeds, fixed=True), _client(seeds, fixed=False)
    view = ClusterView([Member(seed, Address("127.0.0.1", int(seed[-4:])), "alive", True) for seed in seeds], 64, 2)
    for client in (fixed, aware):
        client.router.install(view, view.checksum)
    keys = [f"k{i}" for i in range(100)]
    assert {fixed.router.targets(key, 0.0)[0] for key in keys} == {Address("127.0.0.1", 9001)}
    assert all(aware.router.targets(key, 0.0)[0] == view.owners(key)[0].address for key in keys)

    rows = [asdict(row(f"{operation} {variant}", rate)) for operation, variant, rate in
            (("PUT", "one node", 1000.0), ("PUT", "ring-aware", 1250.0), ("GET", "one node", 2000.0),
             ("GET", "ring-aware", 2200.0))]
    shares = {r["operation"]: share for r, share in zip(rows, (0.33, 0.0, 0.34, 0.0))}
    lines = format_client({"clusters": {"3 nodes, N=2": {"rows": rows, "non_owner_share": shares}},
                           "load": "2 processes x 8 threads", "rounds": 1, "seconds": 3,
                           "preloaded_keys": 10_000}).splitlines()
    assert lines[0] == "3 nodes, N=2:" and lines[1].split()[-1] == "non-owner"
    assert [line[2 + 28 :].split()[1] for line in lines[2:6]] == ["1.000", "1.250", "1.000", "1.100"]
    assert [line.split()[-1] for line in lines[2:6]] == ["33.0%", "0.0%", "34.0%", "0.0%"]


def test_client_is_a_separate_run_that_needs_no_wrk(monkeypatch, capsys):
    _, args = cli.parse_settings(["--client", "--quick"])
    assert args.client
    with pytest.raises(SystemExit):
        cli.parse_settings(["--client", "--metrics"])
    assert "not allowed with" in capsys.readouterr().err


def test_the_default_data_is_the_shared_postal_file_beside_the_checkout():
    from gossipdht.tools.bench.postal import DEFAULT_DATA

    checkout = Path(__file__).resolve().parents[2]
    assert DEFAULT_DATA == checkout.parent / "shared" / "data" / "se-postal-codes.tsv"


def test_the_admitted_quantile_is_read_from_the_histogram_between_two_reads():
    from gossipdht.tools.bench.overload import quantile_ms

    before = [(0.001, 10.0), (0.01, 10.0), (0.1, 10.0), (float("inf"), 10.0)]
    after = [(0.001, 10.0), (0.01, 960.0), (0.1, 1009.0), (float("inf"), 1010.0)]
    assert quantile_ms(before, after, 0.50) == 10.0  # the ten answers before do not count
    assert quantile_ms(before, after, 0.99) == 100.0
    assert quantile_ms(after, after, 0.99) is None


def test_the_overload_report_shows_the_rows_as_shares_of_the_calm_ones_flooded_of_busy_and_what_gossip_saw():
    from gossipdht.tools.bench.overload import format_overload

    rows = [asdict(row(name, rate)) for name, rate in
            (("GET calm", 4000.0), ("GET busy", 3600.0), ("GET flooded", 3420.0),
             ("PUT calm", 3000.0), ("PUT busy", 2500.0), ("PUT flooded", 2400.0))]
    flood = {"connections": 256, "answers_per_s": 6500.0, "share_503": 0.112, "p50_ms": 31.2, "p99_ms": 54.4,
             "admitted_p99_ms": 25.0, "refused_overload": 900, "watch_looks": 150,
             "unhealthy": ["port 1 saw 1 suspect"], "refutations": 0}
    refusal = {"per_s": 41234.0, "share_503": 1.0, "cpu_us": 21.04, "p99_ms": 2.0}
    text = format_overload({"rows": rows, "loads": {"busy": [], "flooded": [flood]}, "processors": (0, 1),
                            "refusal": refusal, "rounds": 1, "seconds": 10, "preloaded_keys": 10_000})
    shares = {line[:28].strip(): line.split()[3] for line in text.splitlines()[2:8]}
    assert shares == {"GET calm": "1.000", "GET busy": "0.900", "GET flooded": "0.855", "PUT calm": "1.000",
                      "PUT busy": "0.833", "PUT flooded": "0.800"}
    assert "flooded as a share of busy: GET 0.950, PUT 0.960" in text
    assert ("flooded 1 (-c256): 6,500 answers/s, 11.2% of them 503, p50 31.2 ms and p99 54.4 ms over every answer, "
            "admitted GET p99 <= 25 ms; gossip: 1 looks of 150 saw a member suspect or dead, 0 refutations") in text
    assert "port 1 saw 1 suspect" in text and "the first node and its wrk on 0" in text
    assert "a 503 for load: 41,234 a second (100.0% of the answers), 21.0 us of the node's CPU each" in text
