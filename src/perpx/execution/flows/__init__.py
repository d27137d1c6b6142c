"""Conditional flows: OCO, OTO, bracket and if-then across markets, run on the ``Venue`` port.

A flow is the ``flow`` of a strategy document (:mod:`perpx.execution.document`): nodes that start when
their trigger fires. :mod:`.conditions` holds the pure tests (a price crossing, a fill share, a TCA
metric), :mod:`.state` what the runner knows of each node, :mod:`.algos` how an algo node starts a
parent order, and :mod:`.runner` the loop that drives them all on any :class:`~perpx.execution.venue.Venue`.
"""
