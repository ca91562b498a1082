"""The YAML config: schema (strict: unknown keys are errors), `${VAR}` expansion, cross-checks.

`load_config(path)` returns a frozen `GatewayConfig` or raises `ConfigError` whose message names
the file and the key. The keys are a contract with users and with tools that generate configs.

    base.py        the strict base model of every section; ConfigError
    upstreams.py   providers (replicas, GPUs, capacity watching) and models (prices, capabilities)
    routes.py      routes, SLOs, tasks, shadow sampling, the quality gate, reliability
    service.py     the gateway's own machinery: ledger, limits, auth, governance, logging, drain…
    schema.py      GatewayConfig: the top level, and the checks across its sections
    loading.py     ${VAR} expansion, parse_config / load_config, errors, with_calibrations

Everything is imported from here (`from gateway.config import GatewayConfig`); the modules are
how it is kept, not an interface of their own.
"""

from gateway.config.base import ConfigError
from gateway.config.loading import (
    DEFAULT_CONFIG,
    expand_env,
    load_config,
    parse_config,
    with_calibrations,
)
from gateway.config.routes import (
    Comparator,
    EvidenceConfig,
    QualityGateConfig,
    ReliabilityConfig,
    RouteConfig,
    ShadowConfig,
    SLOConfig,
    TaskBar,
    TaskConfig,
    TaskMatch,
)
from gateway.config.schema import GatewayConfig
from gateway.config.service import (
    MIN_SECRET_CHARS,
    AuthConfig,
    FinanceConfig,
    GovernanceConfig,
    LedgerConfig,
    LimitsConfig,
    LoggingConfig,
    ResponsesConfig,
    ServerConfig,
    SimulatorConfig,
)
from gateway.config.upstreams import (
    DEFAULT_API_BASES,
    Capabilities,
    CapacityConfig,
    GPUConfig,
    ModelConfig,
    PriceOverride,
    PromptCacheConfig,
    ProviderConfig,
    ProviderKind,
)

__all__ = [
    "DEFAULT_API_BASES",
    "DEFAULT_CONFIG",
    "MIN_SECRET_CHARS",
    "AuthConfig",
    "Capabilities",
    "CapacityConfig",
    "Comparator",
    "ConfigError",
    "EvidenceConfig",
    "FinanceConfig",
    "GPUConfig",
    "GatewayConfig",
    "GovernanceConfig",
    "LedgerConfig",
    "LimitsConfig",
    "LoggingConfig",
    "ModelConfig",
    "PriceOverride",
    "PromptCacheConfig",
    "ProviderConfig",
    "ProviderKind",
    "QualityGateConfig",
    "ReliabilityConfig",
    "ResponsesConfig",
    "RouteConfig",
    "SLOConfig",
    "ServerConfig",
    "ShadowConfig",
    "SimulatorConfig",
    "TaskBar",
    "TaskConfig",
    "TaskMatch",
    "expand_env",
    "load_config",
    "parse_config",
    "with_calibrations",
]
