"""Preview tokens: single-use, bound to the agent and the exact order, expiring after 60 s.

A token is the answer to ``preview``; ``place`` with it succeeds at most once, and only for the
order previewed (same symbol, side, type, quantity, price, reduce-only). Tokens live in memory: a
restart forgets them, which only ever refuses an order (the agent previews again), never allows one.
Orders above the policy's ``approvalNotional`` also need a human approval of their token.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

TOKEN_TTL_MS = 60_000
MAX_TOKENS = 100_000


@dataclass(slots=True)
class Preview:
    """One issued token: whose, for which order, until when, and whether it was used or approved."""

    token: str
    agent_id: str
    order_key: tuple[str, ...]
    expires_ms: int
    notional_text: str
    needs_approval: bool
    approved: bool = False
    used: bool = False


class PreviewTokens:
    """Issued tokens by value; thread-safe; expired tokens are dropped as new ones are issued."""

    def __init__(self) -> None:
        self._tokens: dict[str, Preview] = {}
        self._lock = threading.Lock()

    def issue(
        self, agent_id: str, order_key: tuple[str, ...], now_ms: int, notional_text: str, needs_approval: bool
    ) -> Preview:
        with self._lock:
            if len(self._tokens) >= MAX_TOKENS:
                self._tokens = {t: p for t, p in self._tokens.items() if p.expires_ms > now_ms and not p.used}
            preview = Preview(
                "pv-" + secrets.token_urlsafe(24),
                agent_id,
                order_key,
                now_ms + TOKEN_TTL_MS,
                notional_text,
                needs_approval,
            )
            self._tokens[preview.token] = preview
            return preview

    def get(self, token: str) -> Preview | None:
        return self._tokens.get(token)

    def check(self, token: str, agent_id: str, order_key: tuple[str, ...], now_ms: int) -> str | None:
        """Why ``token`` cannot place this order (``None`` when it can); does not use it up."""
        preview = self._tokens.get(token)
        if preview is None or preview.agent_id != agent_id:
            return "the preview token is unknown (preview the order first)"
        if preview.used:
            return "the preview token was already used (each token places one order)"
        if preview.expires_ms <= now_ms:
            return "the preview token expired (tokens last 60 s)"
        if preview.order_key != order_key:
            return (
                "the order differs from the one previewed (symbol, side, type, quantity, price, reduceOnly)"
            )
        return None

    def use(self, token: str) -> bool:
        """Mark ``token`` used; false when another request used it first (the race loses)."""
        with self._lock:
            preview = self._tokens.get(token)
            if preview is None or preview.used:
                return False
            preview.used = True
            return True

    def unuse(self, token: str) -> None:
        """Give a token back when the venue refused the order for a reason of its own before sequencing."""
        with self._lock:
            preview = self._tokens.get(token)
            if preview is not None:
                preview.used = False

    def pending_approvals(self, now_ms: int) -> list[Preview]:
        return [
            p
            for p in self._tokens.values()
            if p.needs_approval and not p.approved and not p.used and p.expires_ms > now_ms
        ]

    def approve(self, token: str) -> Preview | None:
        with self._lock:
            preview = self._tokens.get(token)
            if preview is None or not preview.needs_approval or preview.used:
                return None
            preview.approved = True
            return preview
