"""The OTC desk: RFQ quotes priced by a documented model, block trades on the ledger, hedging, the desk report.

=================  ===============================================================================
module             concept
=================  ===============================================================================
``config``         the ``[otc]`` config section
``pricing``        the pricing model (pure)
``lastlook``       the last-look policy (pure)
``errors``         the desk's refusal codes (-9562 .. -9569)
``market``         what the model reads of the engine: index, depth, band, inventory
``store``          quotes, refused requests, accepts and hedges, durably (SQLite)
``desk``           the RFQ lifecycle: request, accept (last look, expiry, limits), booking
``hedging``        the hedging policy per symbol and the hedges it runs through ``perpx.execution``
``report``         ``perpx desk report``: P&L decomposition from the journal, KPIs, metrics
``simday``         a simulated day: RFQ agents over a risk-lab price path, then the report
=================  ===============================================================================

Block trades themselves are an engine command (``perpx.engine.block``); see ``docs/otc.md``.
"""
