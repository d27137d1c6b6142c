"""An agent's policy: scopes, symbol allow-list, limits, preview and approval rules.

Limits are held as decimals of the settlement asset (notionals, loss) or of the base asset
(``maxPosition``), exactly as the admin sent them; the guard converts them to atoms and lots of
the market at hand, rounding so that the limit is never loosened (see :mod:`perpx.agents.guard`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

AGENT_SCOPES = ("read", "preview", "trade", "algo", "cancel")
"""What an agent key may be given; there is no scope for withdrawals or transfers, by design."""

NOTIONAL_LIMITS = ("maxOrderNotional", "maxOpenNotional", "maxDailyNotional", "sessionLossLimit")
LIMIT_NAMES = (*NOTIONAL_LIMITS, "maxPosition", "maxOrdersPerMinute", "maxSlippageBps")
_PLAIN = re.compile(r"[0-9]{1,18}(\.[0-9]{1,18})?")


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names the field and what to send."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Optional limits; ``None`` means not limited. Money in settlement-asset units, positions in base units."""

    max_order_notional: Decimal | None = None
    max_open_notional: Decimal | None = None
    max_daily_notional: Decimal | None = None
    max_position: Decimal | None = None
    max_orders_per_minute: int | None = None
    max_slippage_bps: int | None = None
    session_loss_limit: Decimal | None = None

    def as_json(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {}
        for name in LIMIT_NAMES:
            value = getattr(self, _attr(name))
            if value is not None:
                out[name] = value if isinstance(value, int) else str(value)
        return out


@dataclass(frozen=True, slots=True)
class AgentPolicy:
    """What one agent may do. ``approval_notional``: orders above it wait for a human approval, from an
    admin, or also from the human at the agent's own MCP client when ``client_approval`` is set."""

    scopes: tuple[str, ...]
    symbols: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    require_preview: bool = False
    approval_notional: Decimal | None = None
    client_approval: bool = False

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def allows_symbol(self, symbol: str) -> bool:
        return not self.symbols or symbol in self.symbols

    def as_json(self) -> dict[str, Any]:
        return {
            "scopes": list(self.scopes),
            "symbols": list(self.symbols),
            "limits": self.limits.as_json(),
            "requirePreview": self.require_preview,
            "approvalNotional": None if self.approval_notional is None else str(self.approval_notional),
            "clientApproval": self.client_approval,
        }


def _attr(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def parse_policy(body: dict[str, Any], known_symbols: tuple[str, ...]) -> AgentPolicy:
    """The policy in an admin request (``scopes``, ``symbols``, ``limits``, ``requirePreview``,
    ``approvalNotional``).

    Raises
    ------
    PolicyError
        An unknown scope or limit, a symbol the venue does not list, or a limit that is not a
        positive plain decimal (integers for ``maxOrdersPerMinute`` and ``maxSlippageBps``).
    """
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise PolicyError(f"scopes must be a non-empty list drawn from {list(AGENT_SCOPES)}")
    bad = [s for s in scopes if s not in AGENT_SCOPES]
    if bad:
        raise PolicyError(f"scopes {bad} are not agent scopes; use {list(AGENT_SCOPES)} (never withdrawals)")
    symbols = body.get("symbols", [])
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise PolicyError("symbols must be a list of listed symbols (empty: every symbol)")
    unknown = [s for s in symbols if s not in known_symbols]
    if unknown:
        raise PolicyError(f"symbols {unknown} are not listed on this venue; listed: {list(known_symbols)}")
    raw_limits = body.get("limits", {})
    if not isinstance(raw_limits, dict):
        raise PolicyError("limits must be an object of limit name to value")
    stray = sorted(k for k in raw_limits if k not in LIMIT_NAMES)
    if stray:
        raise PolicyError(f"limits {stray} are unknown; the limits are {list(LIMIT_NAMES)}")
    values: dict[str, Any] = {}
    for name, value in raw_limits.items():
        if value is None:
            continue
        if name in ("maxOrdersPerMinute", "maxSlippageBps"):
            values[_attr(name)] = _positive_int(value, name)
        else:
            values[_attr(name)] = positive_decimal(value, f"limits.{name}")
    require_preview = body.get("requirePreview", False)
    if not isinstance(require_preview, bool):
        raise PolicyError("requirePreview must be true or false")
    approval = body.get("approvalNotional")
    client_approval = body.get("clientApproval", False)
    if not isinstance(client_approval, bool):
        raise PolicyError("clientApproval must be true or false")
    return AgentPolicy(
        scopes=tuple(dict.fromkeys(scopes)),
        symbols=tuple(dict.fromkeys(symbols)),
        limits=Limits(**values),
        require_preview=require_preview,
        approval_notional=None if approval is None else positive_decimal(approval, "approvalNotional"),
        client_approval=client_approval,
    )


def policy_from_json(doc: dict[str, Any]) -> AgentPolicy:
    """A stored policy (:meth:`AgentPolicy.as_json`) back; it was checked when it was stored."""
    values: dict[str, Any] = {
        _attr(k): v if k in ("maxOrdersPerMinute", "maxSlippageBps") else Decimal(v)
        for k, v in doc.get("limits", {}).items()
    }
    approval = doc.get("approvalNotional")
    return AgentPolicy(
        scopes=tuple(doc["scopes"]),
        symbols=tuple(doc.get("symbols", ())),
        limits=Limits(**values),
        require_preview=bool(doc.get("requirePreview", False)),
        approval_notional=None if approval is None else Decimal(approval),
        client_approval=bool(doc.get("clientApproval", False)),
    )


def positive_decimal(value: Any, name: str) -> Decimal:
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    if text is None or not _PLAIN.fullmatch(text):
        raise PolicyError(f'{name} must be a positive decimal string such as "1000.5"; it was {value!r}')
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise PolicyError(f"{name} was {value!r}, not a decimal") from None
    if number <= 0:
        raise PolicyError(f"{name} must be above zero; it was {value!r}")
    return number


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value > 10**9:
        raise PolicyError(f"limits.{name} must be a whole number from 1 to 10^9; it was {value!r}")
    return value
