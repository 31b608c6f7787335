"""What each ``gossipdht`` subcommand asks the cluster, and its answer as a ``Result``:
text for a terminal, or data for ``--format json``.  ``RequestError`` when a node cannot
be asked or refuses."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Optional, Union

from gossipdht.client.blocking import Client
from gossipdht.client.http import Node, RequestError
from gossipdht.client.tables import count, duration, percent, table
from gossipdht.core.address import Address

STATES = ("alive", "suspect", "dead", "left")
#: The members ``status`` asks for their counters; dead and left ones are not waited for.
ANSWERING = ("alive", "suspect")
#: A member slower than this to give its counters is shown as not answering.
STATS_SECONDS = 5.0
#: A join or leave answers once the data has moved, 504 after 300 s: wait a little longer.
MOVE_SECONDS = 330.0
ASKED_AT_ONCE = 16


@dataclass(frozen=True)
class Result:
    """What a subcommand prints: ``data`` as JSON, or else ``text`` (bytes: written as they are)."""

    data: Any
    text: Union[str, bytes]


def lines(rows: list[str]) -> str:
    return "".join(row + "\n" for row in rows)


def client_of(node: Node) -> Client:
    """The ring-aware client, with ``node`` as its seed: single keys go straight to an owner."""
    return Client([Address(node.host, node.port)], node.cacert, node.token, node.timeout)


def members(node: Node, detailed: bool) -> Result:
    listed = node.get_json("/dht/members")
    header = ["Name", "Address", "Status"] + (["Incarnation", "Since"] if detailed else [])
    rows = [[m["name"], Address(m["address"], m["port"]), m["state"]]
            + ([m["incarnation"], duration(m["since_seconds"])] if detailed else []) for m in listed]
    return Result(listed, lines(table(header, rows, right=(3, 4))))


def status(node: Node) -> Result:
    """Each member as the asked node sees it, with the counters of those that answer at
    their own address, the ring's shares and the transfers left; then a count by state."""
    listed = node.get_json("/dht/members")
    ring = node.get_json("/dht/ring")
    reports = node.get_json("/dht/transfers?cluster=1")
    asked = [m for m in listed if m["state"] in ANSWERING]
    with ThreadPoolExecutor(max(1, min(ASKED_AT_ONCE, len(asked)))) as pool:
        counters = dict(zip([m["name"] for m in asked], pool.map(lambda m: _counters(node, m), asked)))
    shares = {m["name"]: m for m in ring["members"]}
    moving = {r["node"]: r for r in reports if not r.get("unreachable")}
    rows = [_status_row(m, counters.get(m["name"]), shares.get(m["name"]), moving.get(m["name"])) for m in listed]
    counts = {state: sum(1 for m in listed if m["state"] == state) for state in STATES}
    header = ["Name", "Address", "Status", "Keys", "Tombstones", "Owns", "Owns (effective)", "To send", "To pull"]
    cells = [[r["name"], r["address"], r["state"], count(r["keys"]), count(r["tombstones"]), percent(r["share"]),
              percent(r["replica_share"]), count(r["keys_to_send"]), count(r["ranges_to_pull"])] for r in rows]
    footer = [" / ".join(f"{state.capitalize()}: {counts[state]}" for state in STATES)]
    footer += [f"{r['name']} did not answer: {r['error']}" for r in rows if r["error"]]
    text = lines(table(header, cells, right=range(3, len(header))) + [""] + footer)
    return Result({"ring": ring["checksum"], "replicas": ring["replicas"], "members": rows, "counts": counts}, text)


def _counters(node: Node, member: dict) -> tuple[Optional[dict], Optional[str]]:
    """A member's ``/dht/stats``, asked at its own address, or why it did not answer."""
    try:
        return replace(node.at(member["address"], member["port"]), timeout=STATS_SECONDS).get_json("/dht/stats"), None
    except RequestError as e:
        return None, str(e)


def _status_row(member: dict, counters: Optional[tuple], share: Optional[dict], report: Optional[dict]) -> dict:
    stats, error = counters or (None, None)
    data = stats["data"] if stats else {}
    return {
        "name": member["name"], "address": str(Address(member["address"], member["port"])), "state": member["state"],
        "keys": data.get("keys_held"), "tombstones": data.get("tombstones_held"), "error": error,
        "share": share["share"] if share else None, "replica_share": share["replica_share"] if share else None,
        # Keys kept for an owner that is down are still to move, once it is back.
        "keys_to_send": sum(t["keys"] for t in report["sending"] + report["waiting"]) if report else None,
        "ranges_to_pull": sum(t["ranges"] for t in report["receiving"]) if report else None,
    }


def ring(node: Node) -> Result:
    answer = node.get_json("/dht/ring")
    rows = [[m["name"], percent(m["share"]), percent(m["replica_share"])] for m in answer["members"]]
    heading = (f"Ring {answer['checksum']}: {len(rows)} members, {answer['vnodes']} vnodes each, "
               f"{answer['replicas']} replicas")
    return Result(answer, lines([heading] + table(["Name", "Owns", "Owns (effective)"], rows, right=(1, 2))))


def owners(node: Node, key: str) -> Result:
    found = client_of(node).owners(key)
    answer = [{"name": m.name, "host": m.address.host, "port": m.address.port} for m in found]
    return Result(answer, lines(table(["Name", "Address"], [[m.name, m.address] for m in found])))


def transfers(node: Node, as_json: bool) -> Result:
    """Every live member's transfers: the node's own text, or its JSON."""
    if as_json:
        return Result(node.get_json("/dht/transfers?cluster=1"), "")
    return Result(None, node.request("GET", "/dht/transfers?cluster=1").body.decode("utf-8"))


def get(node: Node, key: str) -> Result:
    value = client_of(node).get(key)
    if value is None:
        raise RequestError(f"no such key: {key}")
    data = {"key": key, "content_type": value.content_type, "etag": value.etag}
    try:
        data["value"] = value.decode("utf-8")
    except UnicodeDecodeError:
        data["value_base64"] = base64.b64encode(value).decode("ascii")
    return Result(data, bytes(value))


def put(node: Node, key: str, value: bytes, content_type: str) -> Result:
    return Result({"key": key, "etag": client_of(node).put(key, value, content_type)}, "")


def delete(node: Node, key: str) -> Result:
    client_of(node).delete(key)
    return Result({"key": key, "deleted": True}, "")


def keys(node: Node, scope: str) -> Result:
    listed = node.get_json(f"/db?scope={scope}")
    return Result(listed, lines(listed))


def join(node: Node, seed: Address) -> Result:
    """Has ``node`` join the cluster of ``seed``; answers once the data has moved."""
    answer = replace(node, timeout=MOVE_SECONDS).request("POST", "/dht/join", str(seed).encode())
    return _said(node, answer.body)


def leave(node: Node) -> Result:
    answer = replace(node, timeout=MOVE_SECONDS).request("POST", "/dht/leave")
    return _said(node, answer.body)


def _said(node: Node, body: bytes) -> Result:
    text = body.decode("utf-8", "replace")
    return Result({"node": str(node), "answer": text.strip()}, text if text.endswith("\n") else text + "\n")

