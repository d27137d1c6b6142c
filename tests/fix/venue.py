"""A ``perpx serve --fix-port`` child process for the FIX end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..server.harness import ServerProcess, free_port

SYMBOL = "BTCUSDT"


@dataclass
class FixVenue(ServerProcess):
    """The venue with its FIX acceptor on ``fix_port``; every start marks BTCUSDT at 60,000."""

    fix_port: int = field(default_factory=free_port)

    def start(self, timeout_s: float = 30.0) -> FixVenue:
        if "--fix-port" not in self.extra_args:
            self.extra_args = (*self.extra_args, "--fix-port", str(self.fix_port))
        super().start(timeout_s)
        marked = self.admin("POST", "/marks", {"symbol": SYMBOL, "markPrice": "60000", "indexPrice": "60000"})
        assert marked.status_code == 200, marked.text
        return self
