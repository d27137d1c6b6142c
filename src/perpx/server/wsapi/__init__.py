"""Binance USDS-M's WebSocket API on ``/ws-fapi/v1``: orders and account queries over one connection.

* :mod:`.frames`: a request frame to ``(id, method, params)``, the signature payload, answer frames;
* :mod:`.methods`: each method, as the REST route's own handler;
* :mod:`.session`: one connection's requests (rate limits, authentication, dispatch);
* :mod:`.api`: the route;
* :mod:`.connections`: the open connections (metrics, shutdown).

Differences from Binance are in ``docs/api.md`` (WebSocket API).
"""
