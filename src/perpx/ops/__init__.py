"""Operations: what an on-call engineer reads about a running venue.

Each module is one concept and reads the engine only through what it is handed (an engine
between batches, or a series of figures). The one path that changes the venue is an applied
proposal, and it goes through the engine's own ``ChangeMarketParams`` command.

* :mod:`perpx.ops.venue_risk`: index source ages and quorum, accounts near liquidation.
* :mod:`perpx.ops.invariant_monitor`: the engine's invariant checks on the live venue, on a schedule
  sized to a CPU budget.
* :mod:`perpx.ops.anomaly`: EWMA z-scores (seasonal by hour for volumes) of key series.
* :mod:`perpx.ops.logs`: ``--log-format json``.
* :mod:`perpx.ops.proposals`, :mod:`perpx.ops.proposal_routes`: staged parameter changes (proposal,
  dry run on risk lab scenarios and the venue's state, four-eyes approval, apply), of live and
  non-live parameters (brackets, funding settings, index sources: :mod:`perpx.engine.params`).
"""
