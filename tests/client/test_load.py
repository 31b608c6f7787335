"""``gossipdht load``: the file is checked whole, then sent in batches through ``POST /db``."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from conftest import TOKENS

from gossipdht.client.cli import main
from gossipdht.client.load import LoadError, batches, check


def test_batches_cover_every_line_once_and_know_their_first_line():
    lines = [b"k%d\tv\n" % i for i in range(2500)]
    got = list(batches(lines, 1000))
    assert [first for first, _ in got] == [1, 1001, 2001]
    assert b"".join(body for _, body in got) == b"".join(lines)


def test_a_bad_line_is_named_by_its_line_in_the_file():
    lines = [b"k%d\tv\n" % i for i in range(3000)]
    lines[2502 - 1] = b"no tab on this line\n"
    with pytest.raises(LoadError, match="^line 2502: no tab between key and value; nothing was loaded$"):
        check(lines)


@pytest_twisted.ensureDeferred
async def test_a_file_is_loaded_and_summed_up(node, http, tmp_path, capsys):
    from twisted.internet.threads import deferToThread

    path = tmp_path / "data.tsv"
    path.write_text("".join(f"key{i}\tv\u00e4rde {i}\n" for i in range(2345)), encoding="utf-8")
    address = f"127.0.0.1:{node.ports[0].getHost().port}"
    status = await deferToThread(main, ["load", str(path), "--node", address, "--batch", "500"])
    assert status == 0
    summary = capsys.readouterr().out.strip()
    assert summary.startswith("2345 keys in ") and summary.endswith(" keys/s")
    assert (await http.request(b"GET", b"/db/key2344"))[2] == "v\u00e4rde 2344".encode()


@pytest_twisted.ensureDeferred
async def test_a_bad_file_sends_nothing_and_fails(node, http, tmp_path, capsys):
    from twisted.internet.threads import deferToThread

    path = tmp_path / "data.tsv"
    path.write_bytes(b"a\t1\nb\t2\n\xff\t3\n")
    address = f"127.0.0.1:{node.ports[0].getHost().port}"
    assert await deferToThread(main, ["load", str(path), "--node", address]) == 1
    assert capsys.readouterr().err.strip() == "gossipdht load: line 3: not valid UTF-8; nothing was loaded"
    assert (await http.request(b"GET", b"/db?scope=replica"))[2] == b""


@pytest_twisted.ensureDeferred
async def test_the_token_goes_out_as_bearer_from_the_option_or_the_environment(token_node, tmp_path, capsys,
                                                                               monkeypatch):
    from twisted.internet.threads import deferToThread

    path = tmp_path / "data.tsv"
    path.write_text("a\t1\nb\t2\n", encoding="utf-8")
    command = ["load", str(path), "--node", f"127.0.0.1:{token_node.ports[0].getHost().port}"]
    monkeypatch.delenv("GOSSIPDHT_TOKEN", raising=False)
    assert await deferToThread(main, command) == 1
    assert capsys.readouterr().err.strip() == (
        "gossipdht load: lines from 1: 401 this node needs an API token: send Authorization: Bearer TOKEN")
    assert await deferToThread(main, command + ["--token", TOKENS["write"]]) == 0
    monkeypatch.setenv("GOSSIPDHT_TOKEN", TOKENS["read"])
    assert await deferToThread(main, command) == 1
    assert "403 this request needs the write role; the token has the read role" in capsys.readouterr().err
    assert token_node.store.get("a").value == b"1"


@pytest_twisted.ensureDeferred
async def test_the_node_defaults_to_the_environment_and_json_sums_up_for_scripts(node, tmp_path, capsys, monkeypatch):
    from twisted.internet.threads import deferToThread

    path = tmp_path / "data.tsv"
    path.write_text("a\t1\nb\t2\nc\t3\n", encoding="utf-8")
    monkeypatch.setenv("GOSSIPDHT_NODE", f"127.0.0.1:{node.ports[0].getHost().port}")
    assert await deferToThread(main, ["load", str(path), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["stored"], summary["errors"]) == (3, {})
    assert node.store.get("c").value == b"3"
