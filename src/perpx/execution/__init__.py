"""Execution: parent orders worked by algorithms over one ``Venue`` port.

* :mod:`.model`: the canonical parent order and its validation;
* :mod:`.venue`: the ``Venue`` protocol, its value types (ticks, lots, ns);
* :mod:`.strategy`: the strategy interface (snapshot in, child intents with reasons out);
* :mod:`.ids`: child client order ids derived from ``client_algo_id`` and an index;
* :mod:`.almgren_chriss`: the IS schedule maths.
"""
