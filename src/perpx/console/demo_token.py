"""The demo's admin token, so that ``perpx serve --demo`` opens the operator console without set-up.

A newcomer runs the README's one command and should be able to watch risk on the admin listener.
The admin API refuses every call without a token, and a token everyone knows would open it to
anyone who can reach the port, so the demo makes a random one per data directory instead:

* only for ``--demo`` and only when no token is configured (``PERPX_ADMIN_TOKEN`` or ``[venue]
  admin_token`` always win, and are never printed);
* kept in ``DATA/demo_admin_token`` (mode 0600), so a resumed demo keeps it and an open console tab
  keeps working across a restart;
* printed once in the banner as a link, ``http://127.0.0.1:8081/#token=...``: the fragment never
  leaves the browser (it is not sent to the server, nor logged by it), and the operator console moves
  it into the tab's session storage and clears it from the address bar.

Invariant: a token read back is what was written (URL-safe, :data:`TOKEN_BYTES` of randomness);
anything else in the file (empty, truncated, edited) is replaced by a new token, never used.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Final

TOKEN_FILE: Final = "demo_admin_token"
"""The file in the data directory that keeps the demo's token."""

TOKEN_BYTES: Final = 24
"""Randomness of a token (32 URL-safe characters)."""

_VALID: Final = re.compile(r"[A-Za-z0-9_-]{32}")


def demo_admin_token(data_dir: Path) -> str:
    """The data directory's demo admin token, made (and stored, 0600) on first use.

    Raises
    ------
    OSError
        If the data directory cannot be written (the caller reports it as a start-up error).
    """
    path = data_dir / TOKEN_FILE
    try:
        stored = path.read_text().strip()
    except FileNotFoundError:
        stored = ""
    if _VALID.fullmatch(stored):
        return stored
    token = secrets.token_urlsafe(TOKEN_BYTES)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    os.replace(temporary, path)
    return token


def console_link(admin_url: str, token: str) -> str:
    """The operator console's address with the token in its fragment (see the module docstring)."""
    return f"{admin_url}/#token={token}"
