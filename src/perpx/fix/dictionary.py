"""perpx's FIX 4.4 dialect as a QuickFIX data dictionary (``perpx fix dictionary > FIX44-perpx.xml``).

QuickFIX cannot parse repeating groups without a dictionary (a ``W`` with two ``269`` entries is
rejected with "Tag appears more than once"), so the venue ships one, as Binance ships its FIX
schemas. It holds exactly the messages and fields the gateway sends and accepts; with
``UseDataDictionary=Y`` a client validates every message against it (``tests/fix/test_dictionary.py``
checks the gateway's own messages with QuickFIX's validator).
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

FieldSpec = tuple[int, str, str, tuple[tuple[str, str], ...]]
"""``(tag, name, QuickFIX type, ((enum, description), ...))``."""

FIELDS: tuple[FieldSpec, ...] = (
    (1, "Account", "STRING", ()),
    (6, "AvgPx", "PRICE", ()),
    (7, "BeginSeqNo", "SEQNUM", ()),
    (8, "BeginString", "STRING", ()),
    (9, "BodyLength", "LENGTH", ()),
    (10, "CheckSum", "STRING", ()),
    (11, "ClOrdID", "STRING", ()),
    (12, "Commission", "AMT", ()),
    (13, "CommType", "CHAR", (("3", "ABSOLUTE"),)),
    (14, "CumQty", "QTY", ()),
    (16, "EndSeqNo", "SEQNUM", ()),
    (17, "ExecID", "STRING", ()),
    (18, "ExecInst", "MULTIPLEVALUESTRING", (("6", "PARTICIPANT_DONT_INITIATE"), ("E", "DO_NOT_INCREASE"))),
    (31, "LastPx", "PRICE", ()),
    (32, "LastQty", "QTY", ()),
    (34, "MsgSeqNum", "SEQNUM", ()),
    (35, "MsgType", "STRING", ()),
    (36, "NewSeqNo", "SEQNUM", ()),
    (37, "OrderID", "STRING", ()),
    (38, "OrderQty", "QTY", ()),
    (
        39,
        "OrdStatus",
        "CHAR",
        (
            ("0", "NEW"),
            ("1", "PARTIALLY_FILLED"),
            ("2", "FILLED"),
            ("4", "CANCELED"),
            ("6", "PENDING_CANCEL"),
            ("8", "REJECTED"),
            ("A", "PENDING_NEW"),
            ("C", "EXPIRED"),
            ("E", "PENDING_REPLACE"),
        ),
    ),
    (
        40,
        "OrdType",
        "CHAR",
        (("1", "MARKET"), ("2", "LIMIT"), ("3", "STOP"), ("4", "STOP_LIMIT"), ("D", "PREVIOUSLY_QUOTED")),
    ),
    (41, "OrigClOrdID", "STRING", ()),
    (43, "PossDupFlag", "BOOLEAN", ()),
    (44, "Price", "PRICE", ()),
    (45, "RefSeqNum", "SEQNUM", ()),
    (49, "SenderCompID", "STRING", ()),
    (52, "SendingTime", "UTCTIMESTAMP", ()),
    (54, "Side", "CHAR", (("1", "BUY"), ("2", "SELL"))),
    (55, "Symbol", "STRING", ()),
    (56, "TargetCompID", "STRING", ()),
    (58, "Text", "STRING", ()),
    (
        59,
        "TimeInForce",
        "CHAR",
        (("1", "GOOD_TILL_CANCEL"), ("3", "IMMEDIATE_OR_CANCEL"), ("4", "FILL_OR_KILL")),
    ),
    (60, "TransactTime", "UTCTIMESTAMP", ()),
    (62, "ValidUntilTime", "UTCTIMESTAMP", ()),
    (95, "RawDataLength", "LENGTH", ()),
    (96, "RawData", "DATA", ()),
    (98, "EncryptMethod", "INT", (("0", "NONE_OTHER"),)),
    (99, "StopPx", "PRICE", ()),
    (102, "CxlRejReason", "INT", (("0", "TOO_LATE_TO_CANCEL"), ("1", "UNKNOWN_ORDER"), ("99", "OTHER"))),
    (103, "OrdRejReason", "INT", (("0", "BROKER_OPTION"), ("1", "UNKNOWN_SYMBOL"), ("99", "OTHER"))),
    (108, "HeartBtInt", "INT", ()),
    (112, "TestReqID", "STRING", ()),
    (117, "QuoteID", "STRING", ()),
    (122, "OrigSendingTime", "UTCTIMESTAMP", ()),
    (123, "GapFillFlag", "BOOLEAN", ()),
    (131, "QuoteReqID", "STRING", ()),
    (132, "BidPx", "PRICE", ()),
    (133, "OfferPx", "PRICE", ()),
    (134, "BidSize", "QTY", ()),
    (135, "OfferSize", "QTY", ()),
    (141, "ResetSeqNumFlag", "BOOLEAN", ()),
    (146, "NoRelatedSym", "NUMINGROUP", ()),
    (
        150,
        "ExecType",
        "CHAR",
        (
            ("0", "NEW"),
            ("4", "CANCELED"),
            ("5", "REPLACED"),
            ("8", "REJECTED"),
            ("C", "EXPIRED"),
            ("F", "TRADE"),
            ("I", "ORDER_STATUS"),
        ),
    ),
    (151, "LeavesQty", "QTY", ()),
    (262, "MDReqID", "STRING", ()),
    (
        263,
        "SubscriptionRequestType",
        "CHAR",
        (("0", "SNAPSHOT"), ("1", "SNAPSHOT_PLUS_UPDATES"), ("2", "UNSUBSCRIBE")),
    ),
    (264, "MarketDepth", "INT", ()),
    (265, "MDUpdateType", "INT", (("0", "FULL_REFRESH"), ("1", "INCREMENTAL_REFRESH"))),
    (267, "NoMDEntryTypes", "NUMINGROUP", ()),
    (268, "NoMDEntries", "NUMINGROUP", ()),
    (269, "MDEntryType", "CHAR", (("0", "BID"), ("1", "OFFER"), ("2", "TRADE"))),
    (270, "MDEntryPx", "PRICE", ()),
    (271, "MDEntrySize", "QTY", ()),
    (279, "MDUpdateAction", "CHAR", (("0", "NEW"), ("1", "CHANGE"), ("2", "DELETE"))),
    (
        281,
        "MDReqRejReason",
        "CHAR",
        (("0", "UNKNOWN_SYMBOL"), ("1", "DUPLICATE_MDREQID"), ("8", "UNSUPPORTED_MDENTRYTYPE")),
    ),
    (371, "RefTagID", "INT", ()),
    (372, "RefMsgType", "STRING", ()),
    (373, "SessionRejectReason", "INT", ()),
    (379, "BusinessRejectRefID", "STRING", ()),
    (380, "BusinessRejectReason", "INT", ()),
    (434, "CxlRejResponseTo", "CHAR", (("1", "ORDER_CANCEL_REQUEST"), ("2", "ORDER_CANCEL_REPLACE_REQUEST"))),
    (530, "MassCancelRequestType", "CHAR", (("1", "CANCEL_ORDERS_FOR_A_SECURITY"),)),
    (
        531,
        "MassCancelResponse",
        "CHAR",
        (("0", "CANCEL_REQUEST_REJECTED"), ("1", "CANCEL_ORDERS_FOR_A_SECURITY")),
    ),
    (533, "TotalAffectedOrders", "INT", ()),
    (553, "Username", "STRING", ()),
    (658, "QuoteRequestRejectReason", "INT", (("1", "UNKNOWN_SYMBOL"), ("99", "OTHER"))),
    (790, "OrdStatusReqID", "STRING", ()),
    (1057, "AggressorIndicator", "BOOLEAN", ()),
    (8013, "CancelOrdersOnDisconnect", "BOOLEAN", ()),
    (9406, "DropCopy", "BOOLEAN", ()),
    (25044, "BookUpdateID", "INT", ()),
)

Part = tuple[str, bool] | tuple[str, bool, tuple[tuple[str, bool], ...]]
"""A message part: ``(field, required)``, or ``(group counter, required, fields)``."""

ORDER_REPORT: tuple[Part, ...] = (
    ("OrderID", True),
    ("ClOrdID", False),
    ("OrigClOrdID", False),
    ("ExecID", True),
    ("ExecType", True),
    ("OrdStatus", True),
    ("Symbol", True),
    ("Side", True),
    ("OrderQty", False),
    ("OrdType", False),
    ("Price", False),
    ("StopPx", False),
    ("TimeInForce", False),
    ("ExecInst", False),
    ("LastQty", False),
    ("LastPx", False),
    ("LeavesQty", True),
    ("CumQty", True),
    ("AvgPx", True),
    ("Commission", False),
    ("CommType", False),
    ("AggressorIndicator", False),
    ("OrdRejReason", False),
    ("OrdStatusReqID", False),
    ("TransactTime", False),
    ("QuoteID", False),
    ("Text", False),
)

ENTRIES: tuple[tuple[str, bool], ...] = (("MDEntryType", True), ("MDEntryPx", False), ("MDEntrySize", False))

MESSAGES: tuple[tuple[str, str, str, tuple[Part, ...]], ...] = (
    ("Heartbeat", "0", "admin", (("TestReqID", False),)),
    ("TestRequest", "1", "admin", (("TestReqID", True),)),
    ("ResendRequest", "2", "admin", (("BeginSeqNo", True), ("EndSeqNo", True))),
    (
        "Reject",
        "3",
        "admin",
        (
            ("RefSeqNum", True),
            ("RefTagID", False),
            ("RefMsgType", False),
            ("SessionRejectReason", False),
            ("Text", False),
        ),
    ),
    ("SequenceReset", "4", "admin", (("GapFillFlag", False), ("NewSeqNo", True))),
    ("Logout", "5", "admin", (("Text", False),)),
    (
        "Logon",
        "A",
        "admin",
        (
            ("EncryptMethod", True),
            ("HeartBtInt", True),
            ("RawDataLength", False),
            ("RawData", False),
            ("ResetSeqNumFlag", False),
            ("Username", False),
            ("CancelOrdersOnDisconnect", False),
            ("DropCopy", False),
        ),
    ),
    ("ExecutionReport", "8", "app", ORDER_REPORT),
    (
        "OrderCancelReject",
        "9",
        "app",
        (
            ("OrderID", True),
            ("ClOrdID", True),
            ("OrigClOrdID", False),
            ("OrdStatus", True),
            ("CxlRejResponseTo", True),
            ("CxlRejReason", False),
            ("Text", False),
        ),
    ),
    (
        "NewOrderSingle",
        "D",
        "app",
        (
            ("ClOrdID", True),
            ("Account", False),
            ("ExecInst", False),
            ("Symbol", True),
            ("Side", True),
            ("TransactTime", True),
            ("OrderQty", True),
            ("OrdType", True),
            ("Price", False),
            ("StopPx", False),
            ("TimeInForce", False),
            ("QuoteID", False),
        ),
    ),
    (
        "OrderCancelRequest",
        "F",
        "app",
        (
            ("OrigClOrdID", False),
            ("OrderID", False),
            ("ClOrdID", True),
            ("Symbol", True),
            ("Side", False),
            ("TransactTime", False),
        ),
    ),
    (
        "OrderCancelReplaceRequest",
        "G",
        "app",
        (
            ("OrderID", False),
            ("OrigClOrdID", False),
            ("ClOrdID", True),
            ("Symbol", True),
            ("Side", True),
            ("TransactTime", False),
            ("OrderQty", True),
            ("OrdType", True),
            ("Price", False),
        ),
    ),
    (
        "OrderStatusRequest",
        "H",
        "app",
        (
            ("OrderID", False),
            ("ClOrdID", False),
            ("OrdStatusReqID", False),
            ("Symbol", True),
            ("Side", False),
        ),
    ),
    (
        "OrderMassCancelRequest",
        "q",
        "app",
        (("ClOrdID", True), ("MassCancelRequestType", True), ("Symbol", True), ("TransactTime", False)),
    ),
    (
        "OrderMassCancelReport",
        "r",
        "app",
        (
            ("ClOrdID", True),
            ("OrderID", True),
            ("MassCancelRequestType", True),
            ("MassCancelResponse", True),
            ("TotalAffectedOrders", False),
            ("Symbol", False),
            ("Text", False),
        ),
    ),
    (
        "MarketDataRequest",
        "V",
        "app",
        (
            ("MDReqID", True),
            ("SubscriptionRequestType", True),
            ("MarketDepth", True),
            ("MDUpdateType", False),
            ("NoMDEntryTypes", True, (("MDEntryType", True),)),
            ("NoRelatedSym", True, (("Symbol", True),)),
        ),
    ),
    (
        "MarketDataSnapshotFullRefresh",
        "W",
        "app",
        (("MDReqID", False), ("Symbol", True), ("BookUpdateID", False), ("NoMDEntries", True, ENTRIES)),
    ),
    (
        "MarketDataIncrementalRefresh",
        "X",
        "app",
        (
            ("MDReqID", False),
            ("BookUpdateID", False),
            ("NoMDEntries", True, (("MDUpdateAction", True), *ENTRIES, ("Symbol", False))),
        ),
    ),
    ("MarketDataRequestReject", "Y", "app", (("MDReqID", True), ("MDReqRejReason", False), ("Text", False))),
    # the OTC desk's RFQ flow (perpx.server.otc_fix)
    (
        "QuoteRequest",
        "R",
        "app",
        (
            ("QuoteReqID", True),
            ("NoRelatedSym", True, (("Symbol", True), ("Side", False), ("OrderQty", True))),
        ),
    ),
    (
        "Quote",
        "S",
        "app",
        (
            ("QuoteReqID", False),
            ("QuoteID", True),
            ("Symbol", True),
            ("BidPx", False),
            ("OfferPx", False),
            ("BidSize", False),
            ("OfferSize", False),
            ("ValidUntilTime", False),
            ("TransactTime", False),
        ),
    ),
    (
        "QuoteRequestReject",
        "AG",
        "app",
        (
            ("QuoteReqID", True),
            ("QuoteRequestRejectReason", True),
            ("NoRelatedSym", True, (("Symbol", True),)),
            ("Text", False),
        ),
    ),
    (
        "BusinessMessageReject",
        "j",
        "app",
        (
            ("RefSeqNum", False),
            ("RefMsgType", True),
            ("BusinessRejectRefID", False),
            ("BusinessRejectReason", True),
            ("Text", False),
        ),
    ),
)

HEADER: tuple[tuple[str, bool], ...] = (
    ("BeginString", True),
    ("BodyLength", True),
    ("MsgType", True),
    ("SenderCompID", True),
    ("TargetCompID", True),
    ("MsgSeqNum", True),
    ("PossDupFlag", False),
    ("SendingTime", True),
    ("OrigSendingTime", False),
)


def _yn(required: bool) -> str:
    return "Y" if required else "N"


def _parts(parts: tuple[Part, ...], indent: str) -> list[str]:
    lines: list[str] = []
    for part in parts:
        if len(part) == 2:
            lines.append(f'{indent}<field name="{part[0]}" required="{_yn(part[1])}"/>')
            continue
        name, required, fields = part
        lines.append(f'{indent}<group name="{name}" required="{_yn(required)}">')
        lines += [f'{indent}  <field name="{f}" required="{_yn(r)}"/>' for f, r in fields]
        lines.append(f"{indent}</group>")
    return lines


def dictionary_xml() -> str:
    """The data dictionary, as QuickFIX reads it."""
    lines = ['<fix major="4" minor="4" servicepack="0" type="FIX">', " <header>"]
    lines += _parts(HEADER, "  ")
    lines += [
        " </header>",
        " <trailer>",
        '  <field name="CheckSum" required="Y"/>',
        " </trailer>",
        " <messages>",
    ]
    for name, msg_type, category, parts in MESSAGES:
        lines.append(f'  <message name="{name}" msgtype="{msg_type}" msgcat="{category}">')
        lines += _parts(parts, "   ")
        lines.append("  </message>")
    lines += [" </messages>", " <components/>", " <fields>"]
    for tag, name, kind, enums in FIELDS:
        if not enums:
            lines.append(f'  <field number="{tag}" name="{name}" type="{kind}"/>')
            continue
        lines.append(f'  <field number="{tag}" name="{name}" type="{kind}">')
        lines += [f"   <value enum={quoteattr(e)} description={quoteattr(d)}/>" for e, d in enums]
        lines.append("  </field>")
    lines += [" </fields>", "</fix>"]
    return "\n".join(lines) + "\n"
