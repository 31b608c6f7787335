"""The client's requests before they are sent, and how their answers read: one ``Call``
per request, shared by the blocking face (``blocking``) and the Twisted one
(``twistedclient``), which only send them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union
from urllib.parse import quote, urlencode

from gossipdht.client.http import Response
from gossipdht.core import media
from gossipdht.core.ring import CHECKSUM_HEADER


class Value(bytes):
    """A value read: its bytes, with the content type and ETag it was stored with."""

    content_type: Optional[str]
    etag: Optional[str]

    def __new__(cls, data: bytes, content_type: Optional[str] = None, etag: Optional[str] = None) -> Value:
        value = super().__new__(cls, data)
        value.content_type, value.etag = content_type, etag
        return value


@dataclass(frozen=True)
class Call:
    """One request: where it goes (``route``, the key that picks the node; None: any
    node), what it sends, the statuses that are answers, and how an answer reads."""

    method: str
    path: str
    route: Optional[str]
    read: Callable[[Response], Any]
    body: Optional[bytes] = None
    headers: Mapping[str, str] = field(default_factory=dict)
    expect: tuple[int, ...] = (200,)


def ring_checksum(response: Response) -> Optional[str]:
    """The checksum of the answering node's ring, which answers under ``/db`` carry."""
    return response.headers.get(CHECKSUM_HEADER.lower())


def key_path(prefix: str, key: str) -> str:
    """The path of ``key`` under ``prefix``, every reserved character escaped (``/`` too)."""
    return prefix + quote(key, safe="")


def _query(**params: Optional[object]) -> str:
    given = {name: value for name, value in params.items() if value is not None}
    return "?" + urlencode(given) if given else ""


def get(key: str, r: Optional[int] = None) -> Call:
    """The value of ``key`` as a ``Value``, or None when there is none."""
    def read(response: Response) -> Optional[Value]:
        if response.status == 404:
            return None
        return Value(response.body, response.headers.get("content-type"), response.headers.get("etag"))
    return Call("GET", key_path("/db/", key) + _query(r=r), key, read, expect=(200, 404))


def exists(key: str, r: Optional[int] = None) -> Call:
    return Call("HEAD", key_path("/db/", key) + _query(r=r), key, lambda response: response.status == 200,
                expect=(200, 404))


def put(key: str, value: Union[bytes, str], content_type: Optional[str] = None, w: Optional[int] = None) -> Call:
    """Stores ``value``: text as ``text/plain; charset=utf-8``, bytes as
    ``application/octet-stream``, unless ``content_type`` says otherwise; reads as the new ETag."""
    if isinstance(value, str):
        body, default = value.encode("utf-8"), media.TEXT
    else:
        body, default = bytes(value), media.OCTET_STREAM
    return Call("PUT", key_path("/db/", key) + _query(w=w), key, lambda response: response.headers.get("etag"),
                body, {"Content-Type": content_type or default}, expect=(204,))


def delete(key: str, w: Optional[int] = None) -> Call:
    return Call("DELETE", key_path("/db/", key) + _query(w=w), key, lambda response: None, expect=(204,))


def put_many(items: Mapping[str, Union[str, bytes]], w: Optional[int] = None) -> Call:
    """One bulk write (``POST /db``) of text values, routed by its first key; reads as the
    keys that fell short of their write quorum, each with why."""
    document = {key: value if isinstance(value, str) else value.decode("utf-8") for key, value in items.items()}
    body = json.dumps(document).encode()
    return Call("POST", "/db" + _query(w=w), next(iter(document)), lambda response: response.json()["errors"],
                body, {"Content-Type": media.JSON}, expect=(200, 503))


def keys(scope: str = "primary") -> Call:
    """The keys one node lists (``primary``: those it is the first owner of)."""
    return Call("GET", "/db" + _query(format="json", scope=scope), None, lambda response: response.json())


def members() -> Call:
    return Call("GET", "/dht/members", None, lambda response: response.json(), headers={"Accept": media.JSON})


def ring() -> Call:
    return Call("GET", "/dht/ring", None, lambda response: response.json(), headers={"Accept": media.JSON})
