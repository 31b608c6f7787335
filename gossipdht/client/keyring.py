"""The client side of ``gossipdht keyring``: ``POST /dht/keyring`` to one node, and its answer as lines."""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Iterator, Optional

ACTIONS = ("install", "use", "remove", "list")
#: The node asks every member in turn: give it time for a slow one.
SECONDS = 30


class AskError(Exception):
    """The node could not be asked, or refused the request as a whole."""


def ask(host: str, port: int, action: str, key: Optional[str], cacert: Optional[str] = None,
        token: Optional[str] = None) -> tuple[int, dict]:
    """The status and JSON answer of the node at ``host:port`` to one keyring action
    (``token``: sent as the Bearer token)."""
    if cacert is None:
        connection: http.client.HTTPConnection = http.client.HTTPConnection(host, port, timeout=SECONDS)
    else:
        context = ssl.create_default_context(cafile=cacert)
        connection = http.client.HTTPSConnection(host, port, timeout=SECONDS, context=context)
    body = json.dumps({"action": action, "key": key} if key else {"action": action}).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("POST", "/dht/keyring", body, headers)
        response = connection.getresponse()
        text = response.read()
    except (OSError, http.client.HTTPException) as e:
        raise AskError(f"cannot ask {host}:{port}: {e}") from None
    finally:
        connection.close()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if response.status not in (200, 502) or not isinstance(answer, dict):
        raise AskError(f"{host}:{port} answered {response.status}: {text.decode('utf-8', 'replace').strip()}")
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
