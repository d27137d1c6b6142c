"""WebSocket API frames: a request's JSON text to ``(id, method, params)``, and the answers back.

A request is one JSON object in one text frame: ``{"id", "method", "params"}``. Its parameters
become the same ``name -> text`` mapping a REST request's query string gives, so every handler
reads them with the REST parsers (:mod:`perpx.server.wire`): a JSON number keeps its text exactly
as sent (``0.10`` stays ``"0.10"``, ``1e400`` stays ``"1e400"`` and is refused by the decimal
parser, never rounded through a float), a boolean is ``"true"`` / ``"false"`` (ccxt signs
``returnRateLimits=false``), a string is itself.

Signing (Binance's rule for the WebSocket API): HMAC-SHA256, keyed with the API secret, over
every parameter but ``signature``, sorted by name, as ``name=value`` joined with ``&``, values as
sent or percent-encoded (:func:`signature_payloads`). Both are built from the same texts the
handlers read, so what is signed is what is executed.

A frame that cannot be read never closes the connection: it is answered with an error frame,
``{"id", "status", "error": {"code", "msg"}}`` (``id`` ``null`` when the frame had none that
could be read), and the connection waits for the next request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from perpx.server.errors import ApiError

MAX_FRAME_BYTES: Final = 64 * 1024
"""The largest request frame read (REST's body limit); a longer one is answered -9600 unread."""
MAX_ID_CHARS: Final = 64
"""A request id is an integer, a string of at most this many characters, or null."""
MAX_PARAMS: Final = 64
MAX_VALUE_CHARS: Final = 1024
"""A parameter's text; every real parameter is far shorter (a client id is 36, a decimal 40)."""

BAD_FRAME: Final = -9600
"""The frame is not one JSON object of at most :data:`MAX_FRAME_BYTES` (perpx's code: Binance
documents none for a frame it cannot read)."""
UNKNOWN_METHOD: Final = -9601
"""``method`` names no method of the venue's WebSocket API (perpx's code)."""

_INTEGER_ID = re.compile(r"-?[0-9]{1,19}")
_TOP_LEVEL = frozenset({"id", "method", "params"})


class _Number(str):
    """A JSON number's text exactly as sent (kept as text: no float, no int of unbounded size)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Request:
    """One request frame, read: its id (echoed in the answer), method and parameter texts."""

    id: int | str | None
    method: str
    params: dict[str, str]


class FrameError(Exception):
    """A frame that cannot be answered as a request: the error and the id to answer with."""

    def __init__(self, request_id: int | str | None, error: ApiError) -> None:
        super().__init__(error.msg)
        self.request_id = request_id
        self.error = error


def read_request(text: str) -> Request:
    """Read one request frame.

    Raises
    ------
    FrameError
        ``-9600`` for a frame over :data:`MAX_FRAME_BYTES`, not JSON, or not an object; ``-1102``
        for a malformed ``id``, ``method`` or ``params`` or a parameter that is not a string,
        number or boolean; ``-1101`` for a name sent twice; ``-1104`` for a top-level field other
        than ``id``, ``method`` and ``params``. Carries the frame's ``id`` when it could be read.
    """
    if len(text) > MAX_FRAME_BYTES:
        raise FrameError(
            None, frame_refused(f"the frame is {len(text)} characters; at most {MAX_FRAME_BYTES}")
        )
    try:
        body = json.loads(
            text,
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_object,
        )
    except _DuplicateName as exc:
        raise FrameError(
            None, ApiError(400, -1101, f"Duplicate values for a parameter detected: '{exc.name[:64]}'.")
        ) from None
    except (ValueError, RecursionError):
        raise FrameError(None, frame_refused("it is not valid JSON")) from None
    if not isinstance(body, dict):
        raise FrameError(None, frame_refused('it must be a JSON object {"id", "method", "params"}'))
    request_id = _request_id(body.get("id"))
    extra = sorted(set(body) - _TOP_LEVEL)
    if extra:
        raise FrameError(
            request_id,
            ApiError(
                400,
                -1104,
                f"Unknown request field(s) {', '.join(repr(e[:32]) for e in extra[:5])}: a request"
                " has only 'id', 'method' and 'params'.",
            ),
        )
    method = body.get("method")
    if not isinstance(method, str) or isinstance(method, _Number) or not method:
        raise FrameError(
            request_id, ApiError(400, -1102, "Mandatory field 'method' was not sent or is not a string.")
        )
    raw_params = body.get("params", {})
    if raw_params is None:
        raw_params = {}
    if not isinstance(raw_params, dict):
        raise FrameError(request_id, ApiError(400, -1102, "Field 'params' must be a JSON object."))
    if len(raw_params) > MAX_PARAMS:
        raise FrameError(
            request_id, ApiError(400, -1104, f"{len(raw_params)} parameters were sent; at most {MAX_PARAMS}.")
        )
    params: dict[str, str] = {}
    for name, value in raw_params.items():
        params[name] = _param_text(request_id, name, value)
    return Request(request_id, method[:64], params)


def frame_refused(why: str) -> ApiError:
    return ApiError(400, BAD_FRAME, f"The request frame could not be read: {why}.")


def signature_payloads(params: Mapping[str, str]) -> tuple[bytes, ...]:
    """What a request's ``signature`` may sign: every other parameter, sorted, ``name=value`` joined with ``&``.

    Values as sent (ccxt's form), or percent-encoded as a query string (Binance's official SDK
    signs ``urlencode`` of the sorted parameters): the two differ only when a value holds a
    character a query string escapes (``:`` or ``/`` in a client id), and either is accepted.
    """
    names = sorted(name for name in params if name != "signature")
    raw = "&".join(f"{name}={params[name]}" for name in names)
    encoded = urlencode([(name, params[name]) for name in names])
    return (raw.encode(),) if raw == encoded else (raw.encode(), encoded.encode())


def answer_frame(
    request_id: int | str | None, result: Any, rate_limits: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A successful answer: ``{"id", "status": 200, "result"}`` and ``rateLimits`` unless turned off."""
    frame: dict[str, Any] = {"id": request_id, "status": 200, "result": result}
    if rate_limits is not None:
        frame["rateLimits"] = rate_limits
    return frame


def error_frame(
    request_id: int | str | None, error: ApiError, rate_limits: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A refusal: ``{"id", "status", "error": {"code", "msg"}}``, the REST route's status and body."""
    frame: dict[str, Any] = {"id": request_id, "status": error.status, "error": error.body()}
    if rate_limits is not None:
        frame["rateLimits"] = rate_limits
    return frame


class _DuplicateName(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _DuplicateName(name)
        out[name] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _request_id(raw: Any) -> int | str | None:
    if raw is None:
        return None
    if isinstance(raw, _Number):
        if _INTEGER_ID.fullmatch(raw) and -(2**63) <= int(raw) < 2**63:
            return int(raw)
        raise FrameError(
            None, ApiError(400, -1102, "Field 'id' must be an integer of at most 64 bits, a string or null.")
        )
    if isinstance(raw, str) and len(raw) <= MAX_ID_CHARS:
        return raw
    raise FrameError(
        None,
        ApiError(
            400,
            -1102,
            f"Field 'id' must be an integer, a string of at most {MAX_ID_CHARS} characters or null.",
        ),
    )


def _param_text(request_id: int | str | None, name: str, value: Any) -> str:
    if len(name) > 64:
        raise FrameError(request_id, ApiError(400, -1104, f"Parameter name {name[:32]!r}... is too long."))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise FrameError(
                request_id,
                ApiError(400, -1102, f"Parameter '{name}' was malformed: over {MAX_VALUE_CHARS} characters."),
            )
        return str(value)
    raise FrameError(
        request_id,
        ApiError(
            400, -1102, f"Parameter '{name}' was malformed: it must be a string, a number or a boolean."
        ),
    )
