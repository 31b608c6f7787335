"""The dashboard's files, served at ``GET /ui`` and ``GET /ui/<file>``: a page, its script
and its style sheet, shipped as package data (``ui/``) and read once at start-up.

The page draws the cluster from the JSON endpoints it polls (``/dht/members``,
``/dht/ring``, ``/dht/owners``, ``/dht/activity``, ``/dht/transfers``); nothing is
fetched from elsewhere, and there is no build step.
"""

from __future__ import annotations

from importlib.resources import files

#: The files under ``/ui/``, with their Content-Type; ``index.html`` is also ``/ui`` itself.
TYPES = {
    "index.html": b"text/html; charset=utf-8",
    "dashboard.js": b"text/javascript; charset=utf-8",
    "dashboard.css": b"text/css; charset=utf-8",
}
PAGE = "index.html"


def load() -> dict[str, bytes]:
    """Each file's bytes, by name."""
    folder = files("gossipdht.web") / "ui"
    return {name: (folder / name).read_bytes() for name in TYPES}
