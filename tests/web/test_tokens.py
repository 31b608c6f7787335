"""API tokens: the ``ROLE TOKEN`` file, constant-time look-ups, and the role each request needs."""

from __future__ import annotations

import hmac

import pytest

from gossipdht.web import tokens
from gossipdht.web.tokens import BadTokens, Refusal, needed, parse, refusal

TOKENS = parse(b"# operators\nadmin adm1n-t0ken\n\n  write wr1te-token  \nread r3ad-token\nread second.read+token==\n")


def test_roles_of_the_file_blank_lines_and_comments_skipped():
    assert [TOKENS.role_of(t) for t in (b"adm1n-t0ken", b"wr1te-token", b"r3ad-token", b"second.read+token==")] == [
        "admin", "write", "read", "read"]
    assert TOKENS.counts() == {"read": 2, "write": 1, "admin": 1}


def test_unknown_tokens_have_no_role():
    for token in (b"", b"r3ad-toke", b"r3ad-token ", b"R3AD-TOKEN", b"x" * 10_000):
        assert TOKENS.role_of(token) is None


def test_every_token_is_compared_with_compare_digest_whichever_matches(monkeypatch):
    calls = []
    compare = hmac.compare_digest

    def counting(a, b):
        calls.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", counting)
    for token in (b"adm1n-t0ken", b"second.read+token==", b"unknown", b"a-much-longer-unknown-token"):
        calls.clear()
        TOKENS.role_of(token)
        # No early exit on a match, and digests of one length whatever the token's.
        assert calls == [(32, 32)] * 4


@pytest.mark.parametrize("data, message", [
    (b"read\n", "line 1 is not ROLE TOKEN"),
    (b"# tokens\nwrite s3cret-token extra\n", "line 2 is not ROLE TOKEN"),
    (b"read s3cret\xfftoken\n", "line 1 is not ROLE TOKEN"),
    (b"read ok-token\nreader s3cret-token\n", "line 2: the role is not one of read, write, admin"),
    (b"s3cret-token read\n", "line 1: the role is not one of read, write, admin"),  # swapped: not echoed
    (b"read s3cret-token\n\nadmin s3cret-token\n", "line 3: this token is on an earlier line already"),
    (b"", "no tokens in the file"),
    (b"# only comments\n\n", "no tokens in the file"),
])
def test_a_bad_file_names_the_line_never_the_token(data, message):
    with pytest.raises(BadTokens) as e:
        parse(data)
    assert str(e.value).startswith(message)
    assert "s3cret" not in str(e.value)


@pytest.mark.parametrize("method, path, role", [
    (b"GET", b"/health", None),
    (b"HEAD", b"/health", None),
    (b"POST", b"/health", "write"),
    (b"GET", b"/internal/rpc", None),
    (b"POST", b"/internal/pushpull", "write"),  # no such path: a token is needed as anywhere
    (b"GET", b"/db/k", "read"),
    (b"HEAD", b"/db/k", "read"),
    (b"GET", b"/db?scope=replica", "read"),
    (b"GET", b"/dht/members", "read"),
    (b"GET", b"/dht/transfers?cluster=1", "read"),
    (b"PUT", b"/db/k", "write"),
    (b"DELETE", b"/db/k", "write"),
    (b"POST", b"/db", "write"),
    (b"POST", b"/db/k", "write"),
    (b"POST", b"/dht/join", "admin"),
    (b"PUT", b"/dht/join", "admin"),
    (b"POST", b"/dht/leave", "admin"),
    (b"GET", b"/dht/leave", "admin"),  # GET leaves
    (b"HEAD", b"/dht/leave", "admin"),
    (b"GET", b"/dht/leave?now=1", "admin"),
    (b"POST", b"/dht/remove", "admin"),
    (b"POST", b"/dht/keyring", "admin"),
    (b"DELETE", b"/dht/anything/else", "admin"),
    (b"POST", b"/dht", "admin"),
    # Routing percent-decodes the path: so does the check.
    (b"POST", b"/dh%74/join", "admin"),
    (b"POST", b"/dht%2Fjoin", "admin"),
    (b"GET", b"/dht/%6Ceave", "admin"),
    (b"GET", b"/%68ealth", None),
    # The dashboard's files hold no data; what the page polls needs a token as anywhere.
    (b"GET", b"/ui", None),
    (b"HEAD", b"/ui/dashboard.js", None),
    (b"POST", b"/ui", "write"),
    (b"GET", b"/uix", "read"),
])
def test_the_role_each_request_needs(method, path, role):
    assert needed(method, path) == role


@pytest.mark.parametrize("authorization, answer", [
    ([], Refusal(401, "this node needs an API token: send Authorization: Bearer TOKEN")),
    ([b"Basic d3IxdGUtdG9rZW4="], Refusal(401, "this node needs an API token: send Authorization: Bearer TOKEN")),
    ([b"Bearer wr1te-token", b"Bearer wr1te-token"],
     Refusal(401, "this node needs an API token: send Authorization: Bearer TOKEN")),
    ([b"Bearer nope"], Refusal(401, "unknown API token")),
    ([b"Bearer r3ad-token"], Refusal(403, "this request needs the write role; the token has the read role")),
    ([b"Bearer wr1te-token"], None),
    ([b"bearer  wr1te-token "], None),
    ([b"Bearer adm1n-t0ken"], None),
])
def test_refusals_of_a_write(authorization, answer):
    assert refusal(TOKENS, b"PUT", b"/db/k", authorization) == answer


def test_open_paths_need_no_header_and_write_cannot_administer():
    assert refusal(TOKENS, b"GET", b"/health", []) is None
    assert refusal(TOKENS, b"GET", b"/dht/leave", [b"Bearer wr1te-token"]) == Refusal(
        403, "this request needs the admin role; the token has the write role")


def test_the_tokens_repr_shows_no_token():
    assert repr(TOKENS) == "Tokens()"
