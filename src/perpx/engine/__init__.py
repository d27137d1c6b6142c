"""The deterministic venue core: ``Engine.apply(command) -> events``.

No module in this package reads a clock, draws random numbers, or does I/O.
"""
