"""The pure vocabulary every layer shares: hashing and the ring, the hybrid logical clock,
keys and bulk bodies, addresses, batch limits and the peer error.

Imports nothing of the project outside ``core`` and nothing of Twisted or treq: no time,
no I/O; what it needs of either is passed in.
"""
