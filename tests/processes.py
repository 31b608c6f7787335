"""The ``node_factory`` fixture: real node processes, stopped after each test.

    from processes import node_factory  # the fixture

    def test_something(node_factory):
        node = node_factory("--storage", "memory")
        status, headers, body = node.request("GET", "/health")
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional, Union

import pytest

from gossipdht.nodeprocess import (  # noqa: F401  (re-exported for the tests)
    HOST, TWISTD, NodeProcess, NodeStartError, free_port, run_twistd, twistd_command,
)


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator:
    """A function that makes (and by default starts) nodes; all are stopped afterwards.

    ``node_factory(*args, name="node1", port=None, start=True, data_dir=None)`` returns a
    :class:`NodeProcess` in ``tmp_path/name``.  Cleanup runs even when the test
    fails: every node is stopped with SIGTERM, then SIGKILL if it hangs.
    """
    nodes: list[NodeProcess] = []

    def make(*args: str, name: Optional[str] = None, port: Optional[int] = None,
             start: bool = True, data_dir: Union[str, Path, None] = None) -> NodeProcess:
        node = NodeProcess(tmp_path / (name or f"node{len(nodes) + 1}"), port=port)
        nodes.append(node)
        if start:
            node.start(*args, data_dir=data_dir)
        return node

    try:
        yield make
    finally:
        for node in nodes:
            node.stop(timeout=5.0)
