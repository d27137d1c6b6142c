"""Agents, kill switches and usage counters in ``DATA/agents.sqlite``: they survive a restart.

Everything here changes what the venue lets an agent do, so it is on disk before it is answered:
the agent and its policy, its kill switch, the venue-wide kill switch, and the daily notional and
the day's starting equity and net transfers (``sessionLossLimit``) per agent and UTC day.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from perpx.agents.policy import AgentPolicy, policy_from_json
from perpx.engine.values import AccountId

STORE_FILE = "agents.sqlite"


@dataclass(frozen=True, slots=True)
class Agent:
    """One agent: its key, the account it trades, its policy and whether it is killed."""

    agent_id: str
    api_key: str
    account_id: AccountId
    name: str
    policy: AgentPolicy
    killed: bool
    competitor: bool
    capital_atoms: int = 0
    """The account's equity when the agent was created: a competitor's P&L is measured from it."""

    def as_json(self) -> dict[str, object]:
        return {
            "agentId": self.agent_id,
            "accountId": int(self.account_id),
            "name": self.name,
            "killed": self.killed,
            "competitor": self.competitor,
            **self.policy.as_json(),
        }


class AgentStore:
    """Agents by id and by account; thread-safe; every change written through to SQLite."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS agents (agent_id TEXT PRIMARY KEY, api_key TEXT NOT NULL,"
            " account_id INTEGER NOT NULL UNIQUE, name TEXT NOT NULL, policy TEXT NOT NULL,"
            " killed INTEGER NOT NULL, competitor INTEGER NOT NULL, capital_atoms INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS switches (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS usage (agent_id TEXT NOT NULL, day INTEGER NOT NULL,"
            " notional_atoms INTEGER NOT NULL, start_equity_atoms INTEGER, PRIMARY KEY (agent_id, day));"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(usage)")}
        if "start_transfers_atoms" not in columns:  # a store from before the transfer total
            self._db.execute("ALTER TABLE usage ADD COLUMN start_transfers_atoms INTEGER")
        self._lock = threading.Lock()
        self._agents: dict[str, Agent] = {}
        for row in self._db.execute(
            "SELECT agent_id, api_key, account_id, name, policy, killed, competitor, capital_atoms FROM agents"
            " ORDER BY agent_id"
        ):
            agent = Agent(
                row[0],
                row[1],
                AccountId(row[2]),
                row[3],
                policy_from_json(json.loads(row[4])),
                bool(row[5]),
                bool(row[6]),
                int(row[7]),
            )
            self._agents[agent.agent_id] = agent
        found = self._db.execute("SELECT value FROM switches WHERE name = 'kill_all'").fetchone()
        self._kill_all = bool(found[0]) if found else False

    def add(self, agent: Agent) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO agents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    agent.agent_id,
                    agent.api_key,
                    int(agent.account_id),
                    agent.name,
                    json.dumps(agent.policy.as_json()),
                    int(agent.killed),
                    int(agent.competitor),
                    agent.capital_atoms,
                ),
            )
            self._agents[agent.agent_id] = agent

    def get(self, agent_id: str) -> Agent | None:
        return self._agents.get(agent_id)

    def for_account(self, account_id: AccountId) -> Agent | None:
        for agent in self._agents.values():
            if agent.account_id == account_id:
                return agent
        return None

    def all(self) -> list[Agent]:
        return sorted(self._agents.values(), key=lambda a: a.agent_id)

    def set_killed(self, agent_id: str, killed: bool) -> Agent:
        with self._lock:
            agent = self._agents[agent_id]
            changed = replace(agent, killed=killed)
            self._db.execute("UPDATE agents SET killed = ? WHERE agent_id = ?", (int(killed), agent_id))
            self._agents[agent_id] = changed
            return changed

    @property
    def kill_all(self) -> bool:
        return self._kill_all

    def set_kill_all(self, on: bool) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO switches VALUES ('kill_all', ?)", (int(on),))
            self._kill_all = on

    def daily_notional(self, agent_id: str, day: int) -> int:
        row = self._db.execute(
            "SELECT notional_atoms FROM usage WHERE agent_id = ? AND day = ?", (agent_id, day)
        ).fetchone()
        return int(row[0]) if row else 0

    def add_daily_notional(self, agent_id: str, day: int, atoms: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO usage (agent_id, day, notional_atoms) VALUES (?, ?, ?)"
                " ON CONFLICT (agent_id, day) DO UPDATE SET notional_atoms = notional_atoms + excluded.notional_atoms",
                (agent_id, day, atoms),
            )

    def day_start(
        self, agent_id: str, day: int, equity_now_atoms: int, transfers_now_atoms: int
    ) -> tuple[int, int]:
        """The account's equity and net transfers when the agent's ``day`` began: the first values seen
        that day, kept from then on (``sessionLossLimit`` measures from them)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO usage (agent_id, day, notional_atoms, start_equity_atoms, start_transfers_atoms)"
                " VALUES (?, ?, 0, ?, ?) ON CONFLICT (agent_id, day) DO UPDATE SET"
                " start_equity_atoms = COALESCE(start_equity_atoms, excluded.start_equity_atoms),"
                " start_transfers_atoms = COALESCE(start_transfers_atoms, excluded.start_transfers_atoms)",
                (agent_id, day, equity_now_atoms, transfers_now_atoms),
            )
            row = self._db.execute(
                "SELECT start_equity_atoms, start_transfers_atoms FROM usage WHERE agent_id = ? AND day = ?",
                (agent_id, day),
            ).fetchone()
            return int(row[0]), int(row[1])

    def close(self) -> None:
        self._db.close()
