"""The local cluster's join (gossipdht.tools.localcluster), against a scripted node."""

from __future__ import annotations

import pytest

from gossipdht.tools.localcluster import join


class Scripted:
    """A node whose ``POST /dht/join`` answers come from ``answers``, in order."""

    host, port = "127.0.0.1", 8081

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        self.answers = list(answers)
        self.asked = 0

    def request(self, method, path, body=None, timeout=None):
        self.asked += 1
        status, text = self.answers.pop(0)
        return status, {}, text


def test_a_node_still_rejoining_the_members_it_knew_is_asked_again():
    node = Scripted((409, b"a join is already in progress\n"), (409, b"a join is already in progress\n"),
                    (200, b"joined a cluster of 3 members\n"))
    join(node, Scripted())
    assert node.asked == 3


def test_another_refusal_or_a_join_in_progress_past_the_deadline_fails_naming_it():
    with pytest.raises(RuntimeError, match="join of 8081 through 8081: 409 the name x belongs to"):
        join(Scripted((409, b"the name x belongs to the live member at 10.0.0.1:8080\n")), Scripted())
    with pytest.raises(RuntimeError, match="409 a join is already in progress"):
        join(Scripted(*[(409, b"a join is already in progress\n")] * 5), Scripted(), timeout=0)
