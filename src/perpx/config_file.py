"""Reading a venue config from disk: the file I/O the engine package never does itself."""

from __future__ import annotations

import tomllib
from pathlib import Path

from perpx.engine.config import ConfigError, VenueConfig, parse_config


def load_config(path: str | Path) -> VenueConfig:
    """Read and validate a venue TOML file.

    Raises
    ------
    ConfigError
        If the file is missing, is not TOML, or breaks a config rule (the message names the key).
    """
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    return parse_config(data)
