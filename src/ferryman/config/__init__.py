"""Loading and validating `ferryman.yml`."""

from .errors import ConfigError, ConfigIssue
from .loader import load_config
from .schema import (
    Address,
    Config,
    Data,
    Duration,
    Environment,
    Guard,
    Health,
    HostSpec,
    Policy,
    Service,
    SshDefaults,
    mask,
    parse_address,
    parse_duration,
)

__all__ = [
    "Address",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Data",
    "Duration",
    "Environment",
    "Guard",
    "Health",
    "HostSpec",
    "Policy",
    "Service",
    "SshDefaults",
    "load_config",
    "mask",
    "parse_address",
    "parse_duration",
]
