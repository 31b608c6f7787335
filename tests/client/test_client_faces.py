"""Both faces of the Python client against an in-process node: every operation, errors
with the node's message, tokens and TLS.

The blocking ``Client`` runs in a thread (it blocks on HTTP) while the reactor serves
the node; ``TwistedClient`` runs in the reactor.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from conftest import TOKENS, start_node
from tls import cluster_pki

from gossipdht.client import Client, NodeError, TwistedClient, Unreachable


def address(service) -> str:
    return f"127.0.0.1:{service.ports[0].getHost().port}"


class Blocking:
    """The blocking client's methods, each run in a thread and returning a Deferred."""

    def __init__(self, *args, **kwargs) -> None:
        self.client = Client(*args, **kwargs)

    def __getattr__(self, name: str):
        from twisted.internet.threads import deferToThread

        method = getattr(self.client, name)
        return lambda *args, **kwargs: deferToThread(method, *args, **kwargs)


FACES = {"blocking": Blocking, "twisted": TwistedClient}


@pytest.mark.parametrize("face", FACES)
@pytest_twisted.ensureDeferred
async def test_every_operation_through_one_node(face, token_node):
    client = FACES[face]([address(token_node)], token=TOKENS["write"])
    value = bytes(range(256))
    etag = await client.put("bin/ary key", value)
    assert etag.startswith('"') and token_node.store.get("bin/ary key").content_type == "application/octet-stream"
    got = await client.get("bin/ary key")
    assert got == value and got.etag == etag and got.content_type == "application/octet-stream"
    await client.put("t\u00e4xt", "v\u00e4lue", w=1)
    assert (await client.get("t\u00e4xt", r=1)).content_type == "text/plain; charset=utf-8"
    await client.put("json", b"{}", content_type="application/json")
    assert (await client.get("json")).content_type == "application/json"
    assert await client.exists("json") and not await client.exists("nothing here")
    assert await client.get("nothing here") is None
    await client.delete("json")
    assert await client.get("json") is None
    assert await client.put_many({"a": "1", "b/c": "2\t3", "d": b"4"}) == {}
    assert token_node.store.get("b/c").value == b"2\t3"
    assert await client.keys() == sorted(["a", "b/c", "bin/ary key", "d", "t\u00e4xt"])
    assert [m.name for m in await client.owners("a")] == [token_node.config.name]

    with pytest.raises(NodeError, match=r"answered 400: r=4 is not a whole number from 1 to N=3$") as raised:
        await client.get("a", r=4)
    assert (raised.value.status, raised.value.message) == (400, "r=4 is not a whole number from 1 to N=3")
    reader = FACES[face]([address(token_node)], token=TOKENS["read"])
    assert await reader.get("a") == b"1"
    with pytest.raises(NodeError, match="403: this request needs the write role; the token has the read role$"):
        await reader.put("a", "x")
    with pytest.raises(NodeError, match="401: this node needs an API token"):
        await FACES[face]([address(token_node)]).get("a")
    if face == "twisted":
        await client.close()


@pytest.mark.parametrize("face", FACES)
@pytest_twisted.ensureDeferred
async def test_https_with_the_ca_given_and_nodes_that_do_not_answer(face, tmp_path):
    pki = cluster_pki(tmp_path)
    node = start_node(tmp_path / "tls", storage="memory", listen=(pki.listen(),), tls_ca=str(pki.ca))
    where = address(node)
    try:
        client = FACES[face]([address(node)], cacert=str(pki.ca))
        await client.put("k", "v")
        assert await client.get("k") == b"v"
        with pytest.raises(Unreachable, match=f"^cannot reach {address(node)}"):
            await FACES[face]([address(node)], cacert=str(pki.foreign_ca)).get("k")
        if face == "twisted":
            await client.close()
    finally:
        await node.stopService()
    with pytest.raises(Unreachable, match=f"^cannot reach ({where}|127.0.0.1:1): .*Connection refused"):
        await FACES[face]([where, "127.0.0.1:1"]).get("k")
