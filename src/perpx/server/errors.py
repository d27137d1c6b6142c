"""Binance-shaped API errors: an HTTP status, a negative code and a message a person can act on.

Every refusal the server sends is an :class:`ApiError`; the app turns it into
``{"code": <int>, "msg": <str>}`` with its HTTP status. Engine refusals keep
the engine's code (they are Binance's codes already, see
:mod:`perpx.engine.codes`) and its message.
"""

from __future__ import annotations

from perpx.engine.codes import RejectCode


class ApiError(Exception):
    """A refusal to send to the client as ``{"code", "msg"}`` with ``status``.

    ``msg`` is always valid UTF-8: text that is not (a lone surrogate a JSON body carried in,
    quoted back by a message) is written as its ``\\uXXXX`` escape, so the answer can be sent.
    """

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        msg = msg.encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def bad_request(code: int, msg: str) -> ApiError:
    return ApiError(400, code, msg)


def mandatory(name: str) -> ApiError:
    """-1102: a required parameter is missing or empty."""
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def bad_param(name: str, why: str) -> ApiError:
    """-1102 with the reason: the parameter was sent but cannot be used."""
    return ApiError(400, -1102, f"Parameter '{name}' was malformed: {why}.")


def illegal_characters(name: str, why: str) -> ApiError:
    """-1100: a text parameter holds characters the venue does not take."""
    return ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; {why}.")


def bad_symbol() -> ApiError:
    return ApiError(400, -1121, "Invalid symbol.")


def timestamp_outside_window() -> ApiError:
    return ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def bad_signature() -> ApiError:
    return ApiError(400, -1022, "Signature for this request is not valid.")


def bad_key() -> ApiError:
    return ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")


def key_format() -> ApiError:
    return ApiError(400, -2014, "API-key format invalid.")


def unknown_order() -> ApiError:
    return ApiError(400, -2013, "Order does not exist.")


def execution_unknown() -> ApiError:
    """The engine did not answer in time: the command may or may not have been applied."""
    return ApiError(
        503,
        -1007,
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    )


def unjournalable(why: str) -> ApiError:
    """-1130: the command cannot be written to the journal (a number beyond 64 bits, text that is not UTF-8).

    Refused before anything is written; the rest of its batch proceeds.
    """
    return ApiError(400, -1130, f"Invalid data sent for a parameter: {why}. The command was not applied.")


def not_journaled(why: str) -> ApiError:
    """503 -1001: the journal could not be written and was restored; the command was certainly not applied."""
    return ApiError(
        503,
        -1001,
        f"Internal error; unable to process your request. Please try again. (The journal could not be"
        f" written: {why}. The command was not applied; it is safe to send it again.)",
    )


def service_unavailable(why: str) -> ApiError:
    return ApiError(503, -1001, f"Internal error; unable to process your request. Please try again. ({why})")


def engine_refusal(code: RejectCode, message: str) -> ApiError:
    """An engine rejection as Binance sends it: HTTP 400 with the engine's code and message.

    A few codes carry Binance's exact text first, because ccxt classifies some
    errors by message (e.g. ``Filter failure: PRICE_FILTER`` -> InvalidOrder).
    """
    prefix = _BINANCE_TEXT.get(code)
    if prefix is None:
        return ApiError(400, int(code), message)
    stem = prefix.rstrip(".")
    if message.lower().startswith(stem.lower()):
        message = message[len(stem) :].lstrip(":. ")
    text = f"{prefix} {message[:1].upper()}{message[1:]}" if message else prefix
    return ApiError(400, int(code), text)


_BINANCE_TEXT: dict[RejectCode, str] = {
    RejectCode.QTY_ABOVE_MAX: "Quantity greater than max quantity.",
    RejectCode.MARGIN_INSUFFICIENT: "Margin is insufficient.",
    RejectCode.BALANCE_INSUFFICIENT: "Balance is insufficient.",
    RejectCode.REDUCE_ONLY_REJECTED: "ReduceOnly Order is rejected.",
    RejectCode.UNKNOWN_ORDER: "Unknown order sent.",
    RejectCode.ORDER_NOT_FOUND: "Order does not exist.",
    RejectCode.ORDER_WOULD_TRIGGER: "Order would immediately trigger.",
    RejectCode.MARGIN_TYPE_UNCHANGED: "No need to change margin type.",
    RejectCode.FOK_NOT_FILLABLE: "Due to the order could not be filled immediately, the FOK order has been rejected.",
    RejectCode.POST_ONLY_WOULD_TAKE: "Due to the order could not be executed as maker, the Post Only order will be rejected.",
}
