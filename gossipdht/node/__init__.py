"""A node assembled: configuration, ``twistd`` options, the service tree that starts and
stops every part in order, listening endpoints, the members snapshot and the reactor-lag
probe.

The top of the runtime: it may import everything; nothing in the package imports it.
"""
