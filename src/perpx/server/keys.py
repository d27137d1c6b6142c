"""API keys: who may sign requests for which account, with which scopes, from which addresses.

Keys live in ``DATA/admin.sqlite`` (never in the journal: a secret must not be
replayable). Secrets are generated here from :mod:`secrets`; they are returned
once, when the key is created, and never logged.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perpx.engine.values import AccountId

SCOPES = ("read", "trade")
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key. ``ips`` empty means any address may use it; ``repr`` never shows the secret."""

    api_key: str
    secret: str = field(repr=False)
    account_id: AccountId
    name: str
    permissions: tuple[str, ...]
    ips: tuple[str, ...]

    def allows(self, scope: str) -> bool:
        return scope in self.permissions


def new_token(length: int = 64) -> str:
    """A random token of letters and digits (Binance's key shape)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class KeyStore:
    """API keys by key string, cached in memory, persisted in SQLite. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (api_key TEXT PRIMARY KEY, secret TEXT NOT NULL,"
            " account_id INTEGER NOT NULL, name TEXT NOT NULL, permissions TEXT NOT NULL, ips TEXT NOT NULL)"
        )
        self._lock = threading.Lock()
        self.on_close: list[Callable[[], None]] = []
        """Called (last added first) when the store closes: stores opened beside it (agents) close with it."""
        self._keys: dict[str, ApiKey] = {}
        for row in self._db.execute(
            "SELECT api_key, secret, account_id, name, permissions, ips FROM api_keys"
        ):
            key = ApiKey(
                row[0],
                row[1],
                AccountId(row[2]),
                row[3],
                tuple(json.loads(row[4])),
                tuple(json.loads(row[5])),
            )
            self._keys[key.api_key] = key

    def create(
        self, account_id: AccountId, name: str, permissions: tuple[str, ...], ips: tuple[str, ...] = ()
    ) -> ApiKey:
        key = ApiKey(new_token(), new_token(), account_id, name, permissions, ips)
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key.api_key,
                    key.secret,
                    int(account_id),
                    name,
                    json.dumps(list(permissions)),
                    json.dumps(list(ips)),
                ),
            )
            self._keys[key.api_key] = key
        return key

    def get(self, api_key: str) -> ApiKey | None:
        return self._keys.get(api_key)

    def for_account(self, account_id: AccountId) -> list[ApiKey]:
        return [key for key in self._keys.values() if key.account_id == account_id]

    def close(self) -> None:
        while self.on_close:
            self.on_close.pop()()
        self._db.close()
