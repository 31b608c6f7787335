"""Replication on Deferreds: quorum reads and writes, the local replica and its group
commits, anti-entropy, rebalancing, hinted handoff, batching and the data counters.

May import ``core`` and ``storage``, and ``twisted.internet.defer``-level Twisted; never
treq, twisted.web, the network adapters (``net``) or the HTTP API (``web``).  Remote
replicas and the time source are given to it.
"""
