"""The OpenAPI 3.1 description of the public API, served as ``GET /openapi.json``.

Kept as data, next to the routes it describes (``api``, ``keyresource``); a test checks
that the paths here and the paths the site serves are the same.  ``/internal/*`` (calls
between nodes) is left out: it is no API for clients.
"""

from __future__ import annotations

import json

from gossipdht import __version__
from gossipdht.core.ring import CHECKSUM_HEADER

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
TSV = "text/tab-separated-values"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
HTML = "text/html; charset=utf-8"


def _text(description: str, example: str = "") -> dict:
    """A ``text/plain`` answer: one line (every error), or lines ending in CRLF."""
    content: dict = {"schema": {"type": "string"}}
    if example:
        content["example"] = example
    return {"description": description, "content": {TEXT: content}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/{name}"}


def _errors(*codes: int) -> dict:
    """The error answers ``codes``, each a one-line text message (``components/responses``)."""
    return {str(code): _ref(f"responses/{code}") for code in codes}


#: What every request may be answered besides its own statuses: a node run with
#: ``--api-tokens`` asks a token first (401, 403); an unsupported method is 405.
_ANY = (401, 403, 405)


def _operation(summary: str, responses: dict, *errors: int, parameters: tuple = (), body: dict | None = None,
               public: bool = False) -> dict:
    operation: dict = {"summary": summary, "responses": {**responses, **_errors(*errors, *((405,) if public else _ANY))}}
    if public:  # no token needed, even with --api-tokens
        operation["security"] = [{}]
    if parameters:
        operation["parameters"] = list(parameters)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _read(operation: dict) -> dict:
    """``GET`` and ``HEAD`` of the same resource: HEAD answers the headers alone."""
    head = {**operation, "summary": f"{operation['summary']} (headers only)"}
    return {"get": operation, "head": head}


def _query(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
       "description": "1 to 1024 bytes of UTF-8 once percent-decoded; '/' is allowed, as is or as %2F "
                      "(/db/a/b is the key a/b)"}
R = _query("r", "replicas that must answer, 1..N [default: --read-quorum]", {"type": "integer", "minimum": 1})
W = _query("w", "replicas that must acknowledge, 1..N [default: --write-quorum]", {"type": "integer", "minimum": 1})
FORMAT = _query("format", "json: a JSON answer (so does Accept: application/json)", {"enum": ["json"]})
ETAG = {"description": "the record's version", "schema": {"type": "string"}}
RING = {"description": "the checksum of the answering node's ring (GET /dht/ring): a client that places keys "
                       "itself reads the members again when it differs from its own", "schema": {"type": "string"}}

_VALUE = {"description": "The value, byte for byte, with the Content-Type it was stored with",
          "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
          "headers": {"ETag": ETAG, CHECKSUM_HEADER: RING}}
_WRITTEN = {"description": "Written on a write quorum of replicas", "headers": {"ETag": ETAG, CHECKSUM_HEADER: RING}}
_PUT_BODY = {"required": False, "description": (
    "The value, stored byte for byte with its Content-Type (default application/octet-stream); a form body "
    "value=... (curl -d value=...) stores the URL-decoded rest as text/plain; charset=utf-8"),
    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}},
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "properties": {"value": {"type": "string"}}}}}}


def _write_key(summary: str) -> dict:
    return _operation(summary, {"204": _WRITTEN}, 400, 413, 503, parameters=(KEY, W), body=_PUT_BODY)


_MEMBER = {"type": "object", "required": ["name", "address", "port", "gossip_port", "state", "incarnation"],
           "properties": {
               "name": {"type": "string"}, "address": {"type": "string"}, "port": {"type": "integer"},
               "gossip_port": {"type": "integer"},
               "state": {"enum": ["alive", "suspect", "dead", "left"]}, "incarnation": {"type": "integer"},
               "since_seconds": {"type": "number"}, "in_ring": {"type": "boolean"},
               "clock_offset_ms": {"type": ["number", "null"]}}}
_TRANSFERS = {"type": "object", "required": ["node", "ring", "settled", "sending", "receiving", "waiting"],
              "properties": {"node": {"type": "string"}, "ring": {"type": "string"},
                             "settled": {"type": ["string", "null"]}, "sending": {}, "receiving": {},
                             "waiting": {}, "unreachable": {"type": "boolean"},
                             "rounds": {"type": "array", "description": "the last rounds, newest first", "items": {
                                 "type": "object", "properties": {
                                     "ended_seconds_ago": {"type": "number"}, "seconds": {"type": "number"},
                                     "full": {"type": "boolean", "description": "compared every record (a ring change)"},
                                     "complete": {"type": "boolean"}, "exchanges": {"type": "integer"},
                                     "failures": {"type": "integer"}, "keys_repaired": {"type": "integer"},
                                     "keys_handed_off": {"type": "integer"}}}}}}
_SERIES = {"type": "array", "items": {"type": ["number", "null"]}}
_ACTIVITY = {"type": "object", "required": ["node"], "properties": {
    "node": {"type": "string"}, "keys_held": {"type": "integer"}, "unreachable": {"type": "boolean"},
    "requests": {"type": ["object", "null"], "description": "null with --metrics false", "properties": {
        "step_seconds": {"type": "number"},
        "operations": {"type": "object", "description": "by operation (get, put, delete, bulk_put, other): "
                                                        "one value a step completed, oldest first",
                       "additionalProperties": {"type": "object", "properties": {
                           "rate": _SERIES, "p50_ms": _SERIES, "p99_ms": _SERIES}}}}}}}
_KEYRING_ANSWER = {"type": "object", "required": ["action", "members", "failed", "keys", "nodes"], "properties": {
    "action": {"type": "string"}, "members": {"type": "integer"},
    "failed": {"type": "array", "items": {"type": "string"}},
    "keys": {"type": "object", "additionalProperties": {"type": "integer"},
             "description": "each key and how many members hold it"},
    "nodes": {"type": "array", "items": {"type": "object", "description": "a member's keys, or its error"}}}}
_NAMES = "Lines, each ending in CRLF"

DOCUMENT: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "gossipdht",
        "version": __version__,
        "description": "A distributed hash table over RESTful HTTP. Every error is a one-line text/plain "
                       "message; a node started with --api-tokens asks Authorization: Bearer TOKEN of every "
                       "request but GET /health and the dashboard's files, /ui (roles read, write, admin; "
                       "see README.rst, Security).",
    },
    "security": [{}, {"bearer": []}],
    "paths": {
        "/db": {
            **_read(_operation(
                "The keys this node is the primary owner of (or stores, with scope=replica), in ring order",
                {"200": {"description": "Keys separated by CRLF, none after the last; or a JSON array",
                         "content": {TEXT: {"schema": {"type": "string"}},
                                     JSON: {"schema": {"type": "array", "items": {"type": "string"}}}}}},
                400,
                parameters=(_query("scope", "primary (default) or replica", {"enum": ["primary", "replica"]}),
                            FORMAT))),
            "post": _operation(
                "Bulk write: many keys, each replicated as a single PUT is, stored as text",
                {"200": _json("Every key reached its write quorum", _ref("schemas/BulkAnswer")),
                 "503": _json("Some keys did not reach their write quorum, with why", _ref("schemas/BulkAnswer"))},
                400, 413, 415, parameters=(W,),
                body={"required": True, "content": {
                    TSV: {"schema": {"type": "string"}, "example": "a\t1\nb\t2\n"},
                    JSON: {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}}}),
        },
        "/db/{key}": {
            **_read(_operation("The key's value", {
                "200": _VALUE, "304": {"description": "If-None-Match names the version held"},
                "404": {"description": "No such key (an empty body)"}}, 400, 503, parameters=(
                    KEY, R, {"name": "If-None-Match", "in": "header", "required": False,
                             "schema": {"type": "string"}}))),
            "put": _write_key("Store the value"),
            "post": _write_key("Store the value (as PUT)"),
            "delete": _operation("Delete the key (a tombstone); 204 whether or not it existed",
                                 {"204": _WRITTEN}, 400, 503, parameters=(KEY, W)),
        },
        "/dht/peers": _read(_operation(
            "The live members' names (suspects included), this node first", {"200": _text(_NAMES, "a\r\nb\r\n")})),
        "/dht/members": _read(_operation(
            "Every known member", {"200": _json("The members", {"type": "array", "items": _MEMBER})})),
        "/dht/stats": _read(_operation("Counters of gossip, data, the reactor and refused internal calls", {
            "200": _json("The counters", {"type": "object", "required": ["gossip", "data", "reactor",
                                                                           "internal_refused"]})})),
        "/dht/ring": _read(_operation("The ring: its checksum, vnodes and each member's share", {
            "200": _json("The ring", {"type": "object", "required": ["checksum", "vnodes", "members"], "properties": {
                "checksum": {"type": "string"}, "vnodes": {"type": "integer"},
                "members": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "share": {"type": "number"}}}},
                "slices": {"type": "array", "items": {"type": "integer"},
                           "description": "with slices=N: the primary owner of most of each of N equal arcs "
                                          "clockwise from token 0, as an index into members"}}})},
            400, parameters=(_query("slices", "N: also the owner of each of N equal arcs of the ring",
                                    {"type": "integer", "minimum": 1, "maximum": 3600}),))),
        "/dht/owners/{key}": _read(_operation(
            "The key's preference list, in order",
            {"200": {"description": "Lines 'NAME HOST:PORT', each ending in CRLF; or JSON", "headers": {
                "Gossipdht-Ring-Position": {"description": "where the key sits, as a fraction of the ring "
                                                           "clockwise from token 0", "schema": {"type": "string"}}},
                     "content": {
                TEXT: {"schema": {"type": "string"}},
                JSON: {"schema": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "host": {"type": "string"}, "port": {"type": "integer"}}}}}}}},
            400, parameters=(KEY, FORMAT))),
        "/dht/join": {method: _operation(
            "Join the cluster of the seeds; answers once membership and data have settled",
            {"200": _text("Joined", "joined a cluster of 3 members\n")}, 400, 409, 502, 504,
            body={"required": True, "description": "lines HOST:PORT or NAME:HOST:PORT", "content": {TEXT: {
                "schema": {"type": "string"}, "example": "127.0.0.1:8080\n"}}}) for method in ("post", "put")},
        "/dht/transfers": _read(_operation(
            "What this node (cluster=1: every live member) still moves for the current ring",
            {"200": {"description": "Text lines, or JSON (an array with cluster=1)", "content": {
                TEXT: {"schema": {"type": "string"}},
                JSON: {"schema": {"oneOf": [_TRANSFERS, {"type": "array", "items": _TRANSFERS}]}}}}},
            400, parameters=(_query("cluster", "1: every live member's", {"enum": ["0", "1"]}), FORMAT))),
        "/dht/activity": _read(_operation(
            "The requests this node (cluster=1: every live member) served in the last minutes, and its keys held",
            {"200": _json("This node's report, or an array with cluster=1",
                          {"oneOf": [_ACTIVITY, {"type": "array", "items": _ACTIVITY}]})},
            400, parameters=(_query("cluster", "1: every live member's", {"enum": ["0", "1"]}),))),
        "/dht/remove": {"post": _operation(
            "Take a dead member off the ring now; answers once its data has new owners",
            {"200": _text("Removed")}, 400, 404, 409, 504,
            body={"required": True, "description": "the member's name",
                  "content": {TEXT: {"schema": {"type": "string"}}}})},
        "/dht/keyring": {"post": _operation(
            "A gossip keyring operation on every live member",
            {"200": _json("Every live member did it", _KEYRING_ANSWER),
             "502": _json("Some member did not answer or could not do it", _KEYRING_ANSWER)}, 400,
            body={"required": True, "content": {JSON: {"schema": {
                "type": "object", "required": ["action"], "properties": {
                    "action": {"enum": ["install", "use", "remove", "list"]},
                    "key": {"type": "string", "description": "base64; all actions but list"}}}}}})},
        "/dht/leave": {
            **{method: _operation("Hand this node's data off and leave the cluster cooperatively",
                                  {"200": _text("Left, or alone already")}, 409, 503, 504) for method in ("get", "post")},
            "head": _operation("Nothing (HEAD does not act)", {"200": {"description": "An empty body"}}),
        },
        "/ui": _read(_operation("The dashboard: a page that draws the cluster from the endpoints above",
                                {"200": {"description": "The page", "content": {HTML: {"schema": {"type": "string"}}}}},
                                public=True)),
        "/ui/{file}": _read(_operation(
            "The dashboard's script and style sheet", {"200": {"description": "The file", "content": {
                "text/javascript; charset=utf-8": {"schema": {"type": "string"}},
                "text/css; charset=utf-8": {"schema": {"type": "string"}}}}}, 404,
            parameters=({"name": "file", "in": "path", "required": True,
                         "schema": {"enum": ["index.html", "dashboard.js", "dashboard.css"]}},), public=True)),
        "/health": _read(_operation("Whether the node serves requests", {"200": _text("Serving", "OK\n")},
                                    public=True)),
        "/metrics": _read(_operation("Metrics in the Prometheus text format (OpenMetrics when Accept asks for it)", {
            "200": {"description": "The metrics", "content": {PROMETHEUS: {"schema": {"type": "string"}}}}},
            404)),
        "/openapi.json": _read(_operation("This document", {"200": _json("OpenAPI 3.1", {"type": "object"})})),
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "a token of the node's --api-tokens file"}},
        "schemas": {
            "Error": {"type": "string", "description": "one line of text, ending in a line break",
                      "example": "no such resource\n"},
            "BulkAnswer": {"type": "object", "required": ["stored", "errors"], "properties": {
                "stored": {"type": "integer"},
                "errors": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "each key not written, and why"}}},
        },
        "responses": {
            str(code): {"description": description, "content": {TEXT: {"schema": _ref("schemas/Error")}}}
            for code, description in {
                400: "A malformed request: key, parameter or body",
                401: "No API token, or an unknown one (with --api-tokens); WWW-Authenticate: Bearer",
                403: "The token's role is too low for the request",
                404: "No such resource or member",
                405: "Method not allowed here (the Allow header lists those that are)",
                409: "Conflicts with the cluster's state (a join or leave running, a live member, no keyring)",
                413: "The body or value is too large (--max-value-bytes)",
                415: "A bulk write is text/tab-separated-values or application/json",
                502: "A node called did not answer or refused",
                503: "Too few replicas answered in time, or the node cannot hand its data off now",
                504: "Timed out while data moves; the work goes on",
            }.items()
        },
    },
}

#: The document as the node serves it.
BODY = json.dumps(DOCUMENT, indent=1).encode() + b"\n"
