"""The client side of ``gossipdht keyring``: ``POST /dht/keyring`` to one node, and its answer as lines."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Iterator, Optional

from gossipdht.client.http import Node, RequestError

ACTIONS = ("install", "use", "remove", "list")
#: The node asks every member in turn: give it time for a slow one.
SECONDS = 30


def ask(node: Node, action: str, key: Optional[str]) -> tuple[int, dict]:
    """The status (200, or 502 unless every member did it) and JSON answer of ``node`` to
    one keyring action; RequestError when it cannot be asked or refuses the request."""
    node = replace(node, timeout=SECONDS)
    body = json.dumps({"action": action, "key": key} if key else {"action": action}).encode()
    response = node.request("POST", "/dht/keyring", body, {"Content-Type": "application/json"}, expect=(200, 502))
    answer = response.json()
    if not isinstance(answer, dict):
        raise RequestError(f"{node} answered {response.status}: {response.body.decode('utf-8', 'replace').strip()}")
    return response.status, answer


def report(answer: dict) -> Iterator[str]:
    """What each member did, then, for ``list``, each key and how many members hold it."""
    for node in answer["nodes"]:
        if "error" in node:
            yield f"{node['node']}: FAILED: {node['error']}"
        elif answer["action"] != "list":
            yield f"{node['node']}: {'done' if node['changed'] else 'already so'}"
    if answer["action"] == "list":
        primaries = [node.get("primary") for node in answer["nodes"]]
        for key, count in answer["keys"].items():
            primary = primaries.count(key)
            yield f"{key}  [{count}/{answer['members']}]" + (f"  primary on {primary}" if primary else "")
    if answer["failed"]:
        yield f"{len(answer['failed'])} of {answer['members']} members did not do it: {', '.join(answer['failed'])}"
