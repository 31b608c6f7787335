"""Tools for developers that ship in the wheel but are not part of a node: the benchmark,
local clusters of ``twistd`` processes and their measurements.

They start nodes as processes and speak HTTP to them; they import no runtime layer
except ``client`` and ``core``.
"""
