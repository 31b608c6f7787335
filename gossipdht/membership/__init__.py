"""SWIM membership without I/O: members and their states, the state machine with
Lifeguard's suspicion and awareness, the gossip wire format, and the simulator that runs
many cores on one fake clock.

May import ``core``; nothing of Twisted, treq, storage or the data layer.
"""
