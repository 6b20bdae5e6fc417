"""flexd.toml, parsed once at start-up into frozen dataclasses (errors name the key path)."""

from flexd.config.model import (
    ROLES,
    ApiConfig,
    Config,
    ConfigError,
    DeviceConfig,
    EvConfig,
    MqttConfig,
    PriceConfig,
    SimulationConfig,
    SiteConfig,
    TokenConfig,
    hash_token,
)
from flexd.config.parse import load_config, parse_config

__all__ = [
    "ROLES",
    "ApiConfig",
    "Config",
    "ConfigError",
    "DeviceConfig",
    "EvConfig",
    "MqttConfig",
    "PriceConfig",
    "SimulationConfig",
    "SiteConfig",
    "TokenConfig",
    "hash_token",
    "load_config",
    "parse_config",
]
