"""The venue's network edge: sequencer, Binance USDS-M compatible REST and WebSocket, admin API.

Everything here is an adapter: it turns wire messages into engine commands and
engine events back into wire messages. The engine itself never imports from here.
"""
