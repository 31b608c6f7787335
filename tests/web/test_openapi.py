"""``GET /openapi.json``: a valid OpenAPI 3.1 document naming exactly the routes the node serves."""

from __future__ import annotations

import json
import re

import pytest
import pytest_twisted
from openapi_spec_validator import validate

from gossipdht.web.api import RestAPI

#: A placeholder of each path parameter, for requests to the paths.
SAMPLE = "k"


def template(path: str) -> str:
    """A path with its parameters as ``{}``: werkzeug's ``<path:__rest__>``, OpenAPI's ``{key}``."""
    return re.sub(r"<[^>]*>|\{[^}]*\}", "{}", path)


def served_paths(site) -> set[str]:
    """Klein's routes (a branch route serves its prefix and everything under it, one path
    with a parameter) and the site's prefixes (``/db/<key>``), without ``/internal/``."""
    rules = [rule.rule for rule in RestAPI.app.url_map.iter_rules()]
    paths = {template(rule) for rule in rules if rule + "<path:__rest__>" not in rules}
    paths |= {prefix.decode() + "{}" for prefix, _ in site.prefixes}
    return {path for path in paths if not path.startswith("/internal/")}


@pytest.fixture
def document(node, http):
    from twisted.internet.defer import ensureDeferred

    status, headers, body = pytest_twisted.blockon(ensureDeferred(http.request(b"GET", b"/openapi.json")))
    assert status == 200 and headers.getRawHeaders(b"content-type") == [b"application/json"]
    return json.loads(body)


def test_the_document_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"].startswith("3.1.")


def test_every_served_route_is_documented_and_every_documented_one_served(node, document):
    documented = {template(path) for path in document["paths"]}
    served = served_paths(node.site)
    assert served - documented == set()
    assert documented - served == set()
    assert not any(path.startswith("/internal/") for path in document["paths"])


@pytest_twisted.ensureDeferred
async def test_each_path_documents_the_methods_its_405_allows(node, http, document):
    """The methods come from the server: a method no route takes is answered 405 with
    ``Allow`` naming those the path takes."""
    for path, operations in document["paths"].items():
        url = re.sub(r"\{[^}]*\}", SAMPLE, path).encode()
        status, headers, body = await http.request(b"PATCH", url)
        assert status == 405 and body.endswith(b"\n") and b"\n" not in body[:-1], path
        allowed = {m.strip().lower() for m in headers.getRawHeaders(b"allow")[0].decode().split(",")}
        assert set(operations) == allowed - {"options"}, path


def test_every_operation_documents_its_errors_as_one_line_text(document):
    responses = document["components"]["responses"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = {int(code) for code in operation["responses"]}
            assert 405 in codes, (path, method)
            for code in codes:
                if code >= 400 and "$ref" in operation["responses"][str(code)]:
                    assert str(code) in responses, (path, method, code)
    for response in responses.values():
        assert list(response["content"]) == ["text/plain; charset=utf-8"]
