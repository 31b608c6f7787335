"""``gossipdht keygen`` and ``gossipdht keyring``, against a node served in the test process."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from conftest import start_node

from gossipdht.client.cli import main
from gossipdht.client.keyring import report
from gossipdht.core.keyring import Keyring, encode_key, parse_key
from gossipdht.node import keyfile

OLD, NEW = b"o" * 32, b"n" * 32


@pytest.fixture
def keyed(tmp_path):
    """A started node (memory storage) with the keyring ``[OLD]``."""
    bootstrap = tmp_path / "bootstrap"
    keyfile.write(str(bootstrap), Keyring([OLD]))
    service = start_node(tmp_path / "node", storage="memory", keyring=str(bootstrap))
    yield service
    pytest_twisted.blockon(service.stopService())


def test_keygen_prints_a_new_32_byte_key(capsys):
    assert main(["keygen"]) == 0
    first = capsys.readouterr().out
    assert main(["keygen"]) == 0
    assert len(parse_key(first)) == 32 and capsys.readouterr().out != first


@pytest_twisted.ensureDeferred
async def test_install_use_remove_and_list_on_a_node(keyed, capsys):
    from twisted.internet.threads import deferToThread

    node = f"127.0.0.1:{keyed.ports[0].getHost().port}"
    for action, key in (("install", NEW), ("use", NEW), ("remove", OLD)):
        assert await deferToThread(main, ["keyring", action, encode_key(key), "--node", node]) == 0
        assert capsys.readouterr().out == f"{keyed.config.name}: done\n"
    assert keyed.sealing.keyring.keys == [NEW]
    assert await deferToThread(main, ["keyring", "list", "--node", node]) == 0
    assert capsys.readouterr().out == f"{encode_key(NEW)}  [1/1]  primary on 1\n"
    assert await deferToThread(main, ["keyring", "list", "--node", node, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["keys"] == {encode_key(NEW): 1}
    assert await deferToThread(main, ["keyring", "remove", encode_key(NEW), "--node", node]) == 1
    assert "is the primary; use another key before removing it" in capsys.readouterr().err


def test_a_key_goes_with_every_action_but_list_and_an_unreachable_node_is_status_1(capsys):
    from gossipdht.tools.nodeprocess import free_port

    for argv in (["keyring", "install", "--node", "127.0.0.1:1"], ["keyring", "list", "KEY", "--node", "127.0.0.1:1"]):
        assert main(argv) == 2
    assert "install, use and remove take a KEY; list takes none" in capsys.readouterr().err
    assert main(["keyring", "list", "--node", f"127.0.0.1:{free_port()}"]) == 1
    assert capsys.readouterr().err.startswith("gossipdht keyring: cannot reach 127.0.0.1:")


def test_the_report_names_each_member_and_what_failed():
    answer = {"action": "install", "members": 2, "failed": ["b"], "keys": {"K": 1},
              "nodes": [{"node": "a", "keys": ["K"], "primary": "K", "changed": True},
                        {"node": "b", "error": "127.0.0.1:2 timed out"}]}
    assert list(report(answer)) == ["a: done", "b: FAILED: 127.0.0.1:2 timed out",
                                    "1 of 2 members did not do it: b"]
