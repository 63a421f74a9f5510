"""The entry points ``ann-train``, ``ann-sweep``, ``ann-sweep-status`` and ``ann-replay``, and what
they print. The top layer: may import every other."""
