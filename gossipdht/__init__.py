"""gossipdht: a distributed hash table over RESTful HTTP, built on Twisted."""

__version__ = "0.1.0"
