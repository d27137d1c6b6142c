"""Simulated traders: each an object with ``setup(ctx)`` and ``act(ctx, now_ns)`` (see :mod:`.base`).

===================  ===================================================================
``kind``             agent
===================  ===================================================================
``market_maker``     :class:`.market_maker.MarketMaker`
``noise_trader``     :class:`.traders.NoiseTrader`
``momentum_trader``  :class:`.traders.MomentumTrader`
``leveraged_taker``  :class:`.traders.LeveragedTaker`
``funding_arb``      :class:`.arbitrageur.FundingArbitrageur`
``whale``            :class:`.whale.Whale`
``attacker``         :class:`.attacker.Attacker`
``mark_walker``      :class:`.mark_walker.MarkWalker`
===================  ===================================================================

A config table is ``{kind, name, count = 1, ...parameters}``; :func:`build_agents` turns a list of
them into agents named ``name`` (or ``name-1`` .. ``name-N`` when ``count > 1``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from perpx.sim.agents.arbitrageur import FundingArbitrageur
from perpx.sim.agents.attacker import Adversary, Attacker
from perpx.sim.agents.base import Agent, AgentContext, AgentError, Submit
from perpx.sim.agents.mark_walker import MarkWalker
from perpx.sim.agents.market_maker import MarketMaker
from perpx.sim.agents.traders import LeveragedTaker, MomentumTrader, NoiseTrader
from perpx.sim.agents.whale import Whale

AGENT_KINDS: dict[str, type[Agent]] = {
    cls.kind: cls
    for cls in (
        MarketMaker,
        NoiseTrader,
        MomentumTrader,
        LeveragedTaker,
        FundingArbitrageur,
        Whale,
        Attacker,
        MarkWalker,
    )
}


def make_agent(kind: str, name: str, params: Mapping[str, Any]) -> Agent:
    """One agent of ``kind`` named ``name`` with ``params``.

    Raises
    ------
    AgentError
        If the kind is unknown or a parameter is unknown or unusable.
    """
    cls = AGENT_KINDS.get(kind)
    if cls is None:
        raise AgentError(f"agent kind was {kind!r}; the kinds are {', '.join(sorted(AGENT_KINDS))}")
    return cls(name, dict(params))


def build_agents(rows: Sequence[Mapping[str, Any]], scale: float = 1.0) -> list[Agent]:
    """Agents from config tables ``{kind, name, count, ...}``; ``scale`` multiplies every given ``count``.

    A scaled count is rounded and kept at least 1; a table without ``count`` is one agent whatever
    the scale (a whale, an attacker). Names must be unique.

    Raises
    ------
    AgentError
        If a table lacks ``kind``, a count is not a whole number, a name repeats, or
        :func:`make_agent` refuses one.
    """
    agents: list[Agent] = []
    seen: dict[str, None] = {}
    for number, row in enumerate(rows):
        params = dict(row)
        kind = params.pop("kind", None)
        if not isinstance(kind, str):
            raise AgentError(f"agents[{number}] needs a kind ({', '.join(sorted(AGENT_KINDS))})")
        name = str(params.pop("name", f"{kind}-{number}"))
        given = params.pop("count", None)
        count = 1 if given is None else given
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise AgentError(f"agents[{number}] ({name}): count was {count!r}; use a whole number >= 0")
        if given is not None and count:
            count = max(1, round(count * scale))
        names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
        for agent_name in names:
            if agent_name in seen:
                raise AgentError(f"agent name {agent_name!r} is used twice")
            seen[agent_name] = None
            agents.append(make_agent(kind, agent_name, params))
    return agents


__all__ = [
    "AGENT_KINDS",
    "Adversary",
    "Agent",
    "AgentContext",
    "AgentError",
    "Attacker",
    "FundingArbitrageur",
    "LeveragedTaker",
    "MarkWalker",
    "MarketMaker",
    "MomentumTrader",
    "NoiseTrader",
    "Submit",
    "Whale",
    "build_agents",
    "make_agent",
]
