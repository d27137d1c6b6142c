"""Transaction cost analysis: what an order cost against its benchmarks, and what one is likely to cost.

Conventions (docs/tca.md, from the reference's section 5): ``s = +1`` for a buy and ``-1`` for a
sell; a positive cost means the trader lost money; bps are ``x 10^4`` of the benchmark stated
next to each metric. Markouts and spread capture are the exceptions: positive means favourable.
Money is exact :class:`decimal.Decimal` arithmetic in the quote currency, so the Perold identity
``delay + execution + opportunity + fees = shortfall`` holds to the last digit.

Modules, one concept each: :mod:`.inputs` (the order, fills, trades, quotes and how CSV files
become them), :mod:`.benchmarks` (arrival, interval VWAP with and without own fills, the mid from
quotes), :mod:`.shortfall` (the Perold decomposition), :mod:`.markouts`, :mod:`.spread`,
:mod:`.analysis` (all of them for one order), :mod:`.report` (tca.json, fills.parquet,
report.html), :mod:`.venue` (an account's fills from a data directory's read models), :mod:`.algo`
(an execution algo's children and its parent's record), :mod:`.estimate` (pre-trade cost),
:mod:`.rest` (its inputs from a running venue's public REST), :mod:`.pretrade` (the estimate beside
the realised cost of a finished order) and :mod:`.calibration` (whether the estimate is biased,
over many simulated orders).
"""
