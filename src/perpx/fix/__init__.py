"""FIX 4.4 gateway: framing (:mod:`.codec`), the session layer (:mod:`.session`) and its store (:mod:`.store`).

The session layer is sans-I/O and deterministic (time is an input); the acceptor that binds a
socket and maps application messages onto the venue's sequencer is an adapter on top of it.
"""
