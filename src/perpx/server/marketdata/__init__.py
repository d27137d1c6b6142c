"""Public market data read models: trade history and candles in SQLite, the book's update sequence in memory.

Two components, fed by the sequencer after every journaled batch (modules: :mod:`.trades` holds the
trade store, :mod:`.candles` the kline intervals and arithmetic, :mod:`.price_candles` the mark, index
and premium klines, :mod:`.depth` the depth tracker):

``marketdata`` (:class:`TradeStore`, persistent, ``DATA/market.sqlite``)
    One row per public trade (the taker's ``OrderFilled`` gives price, size and
    which side was the maker), aggregate trades (consecutive fills of one taker
    order at one price, as Binance aggregates them; the aggregate's id is its
    first trade id), candles at three base resolutions (1m, 1h, 1d: every
    Binance interval is a union of one of them), mark, index and premium candles
    at the same resolutions (every mark and index the pricing engine sets) and the
    funding-rate history (``FundingSettled``). A batch's rows and the last journal record applied
    are written in one transaction, so after a crash the store resumes exactly
    where it stopped (start-up replays the journal after ``resume_seq``).

``depth`` (:class:`DepthTracker`, in memory)
    The order book's update sequence for depth streams. ``book_update_id[m]``
    is the journal record of the last batch that changed market ``m``'s book
    (it starts at the journal's last record, so it never goes back across a
    restart); REST depth answers it as ``lastUpdateId`` from the same read as
    the levels. For each batch that changed a book it keeps the diff: the
    levels whose total changed, with their new absolute size, ``U``/``u`` the
    first and last record of the batch that touched the market, ``pu`` the
    previous diff's ``u``.

Cost of reads
-------------
Every query is a range scan on a primary key or index that starts at the
requested market and time (or id), so its cost grows with the window asked
for, never with the whole history: klines read at most ``limit`` intervals of
base candles, the 24h ticker at most 1,440 one-minute candles.
"""
