"""Operations: what an on-call engineer reads about a running venue.

Each module is one concept and reads the engine only through what it is handed (an engine
between batches, or a series of figures); none of them writes venue state.

* :mod:`perpx.ops.venue_risk`: index source ages and quorum, accounts near liquidation.
* :mod:`perpx.ops.invariant_monitor`: the engine's invariant checks on the live venue, on a schedule
  sized to a CPU budget.
* :mod:`perpx.ops.anomaly`: EWMA z-scores (seasonal by hour for volumes) of key series.
"""
