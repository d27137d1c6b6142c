"""The algorithms, each a small :class:`~perpx.execution.strategy.Strategy`.

:func:`~perpx.execution.algos.build.build_strategy` picks one for a parent order.
"""
