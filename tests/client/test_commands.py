"""The ``gossipdht`` subcommands against in-process nodes: what they print, and their exit status.

``main`` runs in a thread (it blocks on HTTP) while the reactor serves the nodes.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import replace

import pytest
import pytest_twisted
from conftest import TOKENS, node_config, start_node
from tls import cluster_pki

from gossipdht.client.cli import Waiting, main
from gossipdht.client.tables import duration, table
from gossipdht.tools.nodeprocess import free_port


@pytest.fixture
def nodes(tmp_path):
    """``nodes(count)``: that many started nodes (memory storage), each alone, stopped after."""
    from twisted.internet import reactor

    from gossipdht.node.service import NodeService

    services = []

    def make(count: int) -> list:
        for _ in range(count):
            port = free_port("127.0.0.1")
            directory = tmp_path / f"n{len(services)}"
            config = replace(node_config(directory, storage="memory"), name=f"node-{port}", port=port, gossip_port=port)
            service = NodeService(config, reactor)
            service.privilegedStartService()
            service.startService()
            services.append(service)
        return services[-count:]

    yield make
    for service in services:
        if service.running:
            pytest_twisted.blockon(service.stopService())


def address(service) -> str:
    return f"127.0.0.1:{service.ports[0].getHost().port}"


async def run(*argv: str, stdin: bytes | None = None, monkeypatch=None) -> int:
    """``gossipdht ARGV`` in a thread; its exit status."""
    from twisted.internet.threads import deferToThread

    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    return await deferToThread(main, list(argv))


@pytest_twisted.ensureDeferred
async def test_join_members_ring_owners_transfers_and_leave_on_three_nodes(nodes, capsys):
    a, b, c = nodes(3)
    for service in (b, c):
        assert await run("join", address(a), "--node", address(service)) == 0
        out = capsys.readouterr().out
        assert out.endswith("\n") and len(out.splitlines()) == 1, out
    names = sorted(s.config.name for s in (a, b, c))

    assert await run("members", "--node", address(a)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Name", "Address", "Status"]
    assert sorted(line.split()[0] for line in lines[1:]) == names
    assert all(line.split()[2] == "alive" and line.split()[1] == f"127.0.0.1:{line.split()[0][5:]}" for line in lines[1:])
    column = lines[0].index("Address")  # aligned: every address starts under the header
    assert all(line[column - 2:column] == "  " and line[column] != " " for line in lines)

    assert await run("members", "--detailed", "--node", address(b)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Name", "Address", "Status", "Incarnation", "Since"]
    assert all(line.split()[3].isdigit() and line.split()[4].endswith("s") for line in lines[1:])
    assert await run("members", "--format", "json", "--node", address(c)) == 0
    assert sorted(m["name"] for m in json.loads(capsys.readouterr().out)) == names

    assert await run("ring", "--node", address(a)) == 0
    lines = capsys.readouterr().out.splitlines()
    checksum = a.cluster.ring.checksum
    assert lines[0] == f"Ring {checksum}: 3 members, 1024 vnodes each, 3 replicas"
    assert lines[1].split() == ["Name", "Owns", "Owns", "(effective)"]
    assert [line.split()[0] for line in lines[2:]] == names
    assert all(line.split()[2] == "100.0%" for line in lines[2:])  # three replicas on three members
    assert abs(sum(float(line.split()[1][:-1]) for line in lines[2:]) - 100) < 0.2

    assert await run("owners", "a/key with spaces", "--node", address(b)) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = [m.name for m in a.cluster.owners("a/key with spaces", 3)]
    assert [line.split()[0] for line in lines[1:]] == expected

    assert await run("transfers", "--node", address(a)) == 0
    out = capsys.readouterr().out
    assert sorted(line.split()[0] for line in out.splitlines()) == names
    assert all(line.endswith(f"ring {checksum} settled") for line in out.splitlines())
    assert await run("transfers", "--format", "json", "--node", address(a)) == 0
    assert {r["node"]: r["ring"] for r in json.loads(capsys.readouterr().out)} == dict.fromkeys(names, checksum)

    assert await run("leave", "--node", address(c)) == 0
    assert capsys.readouterr().out.endswith("\n")
    assert await run("members", "--node", address(a)) == 0
    states = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    assert states == {a.config.name: "alive", b.config.name: "alive", c.config.name: "left"}


@pytest_twisted.ensureDeferred
async def test_status_shows_each_members_keys_shares_and_a_member_that_does_not_answer(nodes, capsys):
    a, b, c = nodes(3)
    for service in (b, c):
        assert await run("join", address(a), "--node", address(service)) == 0
    for i in range(20):
        assert await run("put", f"key{i}", f"value {i}", "--node", address(a)) == 0
    assert await run("delete", "key0", "--node", address(b)) == 0
    capsys.readouterr()

    assert await run("status", "--node", address(a)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Name", "Address", "Status", "Keys", "Tombstones", "Owns", "Owns", "(effective)",
                                "To", "send", "To", "pull"]
    table_rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert sorted(table_rows) == sorted(s.config.name for s in (a, b, c))
    for service in (a, b, c):
        name, where, state, keys, tombstones, share, effective, send, pull = table_rows[service.config.name]
        assert (where, state, keys, tombstones, effective, send, pull) == (
            address(service), "alive", "19", "1", "100.0%", "0", "0")
        assert share == f"{100 * a.cluster.ring.shares()[name]:.1f}%"
    assert lines[4:] == ["", "Alive: 3 / Suspect: 0 / Dead: 0 / Left: 0"]
    assert await run("status", "--format", "json", "--node", address(b)) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["counts"] == {"alive": 3, "suspect": 0, "dead": 0, "left": 0}
    assert [m["keys"] for m in answer["members"]] == [19, 19, 19]

    where = address(c)
    await c.ports.pop(0).stopListening()  # its HTTP API is gone, its gossip goes on: alive, not answering
    assert await run("status", "--node", address(a)) == 0
    lines = capsys.readouterr().out.splitlines()
    silent = [line.split() for line in lines if line.startswith(c.config.name + " ")][0]
    assert silent[2:5] == ["alive", "-", "-"]
    assert lines[-1] == f"{c.config.name} did not answer: cannot reach {where}: [Errno 111] Connection refused"


@pytest_twisted.ensureDeferred
async def test_get_put_delete_and_keys_keep_values_byte_for_byte(nodes, capsysbinary, monkeypatch):
    (node,) = nodes(1)
    where = ("--node", address(node))
    value = bytes(range(256)) + b"\r\n\x00"
    assert await run("put", "bin/ary key", "-", *where, stdin=value, monkeypatch=monkeypatch) == 0
    assert await run("put", "t\u00e4xt", "v\u00e4lue", *where) == 0
    assert capsysbinary.readouterr().out == b""
    assert node.store.get("bin/ary key").content_type == "application/octet-stream"
    assert node.store.get("t\u00e4xt").content_type == "text/plain; charset=utf-8"

    assert await run("get", "bin/ary key", *where) == 0
    assert capsysbinary.readouterr().out == value
    assert await run("get", "t\u00e4xt", *where) == 0
    assert capsysbinary.readouterr().out == "v\u00e4lue".encode()
    assert await run("get", "bin/ary key", "--format", "json", *where) == 0
    answer = json.loads(capsysbinary.readouterr().out)
    assert answer["content_type"] == "application/octet-stream" and "value_base64" in answer

    assert await run("keys", *where) == 0
    assert sorted(capsysbinary.readouterr().out.decode().splitlines()) == sorted(["bin/ary key", "t\u00e4xt"])
    assert await run("delete", "bin/ary key", *where) == 0
    assert await run("get", "bin/ary key", *where) == 1
    captured = capsysbinary.readouterr()
    assert (captured.out, captured.err) == (b"", b"gossipdht get: no such key: bin/ary key\n")
    assert await run("keys", "--format", "json", *where) == 0
    assert json.loads(capsysbinary.readouterr().out) == ["t\u00e4xt"]


@pytest_twisted.ensureDeferred
async def test_a_token_protected_node_needs_a_token_of_the_role(token_node, capsys, monkeypatch):
    monkeypatch.delenv("GOSSIPDHT_TOKEN", raising=False)
    monkeypatch.setenv("GOSSIPDHT_NODE", address(token_node))  # the default --node
    assert await run("members") == 1
    assert capsys.readouterr().err == (f"gossipdht members: {address(token_node)} answered 401: "
                                       "this node needs an API token: send Authorization: Bearer TOKEN\n")
    assert await run("members", "--token", TOKENS["read"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[0] == token_node.config.name
    monkeypatch.setenv("GOSSIPDHT_TOKEN", TOKENS["read"])
    assert await run("put", "k", "v") == 1
    assert "403: this request needs the write role; the token has the read role" in capsys.readouterr().err
    assert await run("put", "k", "v", "--token", TOKENS["write"]) == 0
    assert await run("get", "k") == 0
    assert capsys.readouterr().out == "v"


@pytest_twisted.ensureDeferred
async def test_https_with_the_ca_given_and_a_node_that_is_down(tmp_path, capsys):
    pki = cluster_pki(tmp_path)
    node = start_node(tmp_path / "tls", storage="memory", listen=(pki.listen(),), tls_ca=str(pki.ca))
    where = address(node)
    try:
        assert await run("members", "--node", address(node), "--cacert", str(pki.ca)) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[:2] == [node.config.name, address(node)]
        assert await run("ring", "--node", address(node)) == 1  # plain HTTP to a TLS port
        assert capsys.readouterr().err.startswith(f"gossipdht ring: cannot reach {address(node)}")
        assert await run("ring", "--node", address(node), "--cacert", str(pki.foreign_ca)) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"gossipdht ring: cannot reach {address(node)} over TLS: ") and err.count("\n") == 1
        assert await run("ring", "--node", address(node), "--cacert", str(tmp_path / "missing.pem")) == 1
        assert capsys.readouterr().err == f"gossipdht ring: --cacert {tmp_path / 'missing.pem'}: No such file or directory\n"
    finally:
        await node.stopService()
    for argv in (["status"], ["get", "k"], ["join", "127.0.0.1:1"], ["keys"]):
        assert await run(*argv, "--node", where) == 1
        err = capsys.readouterr().err
        assert err == f"gossipdht {argv[0]}: cannot reach {where}: [Errno 111] Connection refused\n"


@pytest.mark.parametrize("argv, message", [
    ([], "gossipdht: the following arguments are required: SUBCOMMAND"),
    (["nonsense"], "gossipdht: argument SUBCOMMAND: invalid choice: 'nonsense'"),
    (["members", "--node", "localhost"], "gossipdht members: --node: 'localhost' is not HOST:PORT"),
    (["members", "--format", "xml"], "gossipdht members: argument --format: invalid choice: 'xml'"),
    (["join", "nowhere", "--node", "127.0.0.1:1"], "gossipdht join: 'nowhere' is not HOST:PORT"),
    (["put", "k"], "gossipdht put: the following arguments are required: VALUE|-"),
])
def test_a_usage_error_is_one_line_and_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_help_is_status_0_and_names_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("members", "status", "ring", "owners", "transfers", "get", "put", "delete",
                                        "keys", "join", "leave", "load", "keygen", "keyring"))


def test_columns_align_numbers_right_and_no_line_ends_in_spaces():
    assert table(["Name", "Keys", "Note"], [["a", "1,000", ""], ["long-name", "7", "x"]], right=(1,)) == [
        "Name        Keys  Note",
        "a          1,000",
        "long-name      7  x",
    ]
    assert [duration(s) for s in (0.4, 59, 312, 3 * 3600 + 300, 2 * 86400 + 3 * 3600)] == ["0s", "59s", "5m12s", "3h05m",
                                                                                          "2d03h"]


def test_waiting_shows_the_seconds_on_a_terminal_only():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for out in (terminal, pipe):
        with Waiting("joining", out):
            pass
    assert terminal.getvalue() == "\rjoining: 0 s\r\033[K" and pipe.getvalue() == ""
