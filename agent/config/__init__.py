"""The agent's configuration: one TOML file read into a frozen, typed `AgentConfig`.

The file is ``/etc/edge-agent/agent.toml`` unless ``--config`` or ``$EDGE_AGENT_CONFIG`` names
another (`resolve_config_path`). `load_config` checks every key (type, range, unknown keys
with a "did you mean", missing files, pins claimed twice, secrets written inline) and raises
one `ConfigError` listing every problem with its file, line and key path::

    /etc/edge-agent/agent.toml:12: audio.chunk_ms: must be between 10 and 200, got 500

Typical use (``edge-agent run`` / ``check-config``)::

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    api_key = load_api_key(config)

On SIGHUP, `diff_sections` names the sections whose settings changed, so only those parts
restart. Every key is documented in ``agent.example.toml`` (`example_config_text`).

The config reads and checks; it builds nothing. It is read against the declarations of the
layers it configures (the tool kinds, the camera sources, the mic profiles), and never
imports the Live client. The modules: `load` (files, TOML, line numbers), `syntax` (TOML
syntax errors in plain words), `document` (the whole file), `sections` (one parser per
plain section), `gpio` (``[gpio]`` and ``[[tools]]``), `reader` (typed reads that collect
problems), `lines` (key -> line), `problems`, `model` (the dataclasses), `media` (what it
reads from the media layer), `credentials` (the API key, never in the file).
"""

from agent.config.credentials import (
    EMULATOR_API_KEY,
    MissingCredentialError,
    find_api_key,
    load_api_key,
)
from agent.config.document import SECTIONS
from agent.config.load import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    example_config_path,
    example_config_text,
    load_config,
    parse_config,
    resolve_config_path,
)
from agent.config.model import (
    BACKENDS,
    ActivityDetectionConfig,
    AgentConfig,
    AudioConfig,
    AudioInput,
    AudioOutput,
    Backend,
    BudgetConfig,
    CameraConfig,
    CompressionConfig,
    CredentialsConfig,
    HealthConfig,
    ListenConfig,
    LiveConfig,
    LoggingConfig,
    MemoryConfig,
    MetricsConfig,
    ReconnectConfig,
    SpeechGateConfig,
    UsageConfig,
    diff_sections,
)
from agent.config.problems import ConfigError, ConfigProblem, KeyPath, format_key

__all__ = [
    "BACKENDS",
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "EMULATOR_API_KEY",
    "SECTIONS",
    "ActivityDetectionConfig",
    "AgentConfig",
    "AudioConfig",
    "AudioInput",
    "AudioOutput",
    "Backend",
    "BudgetConfig",
    "CameraConfig",
    "CompressionConfig",
    "ConfigError",
    "ConfigProblem",
    "CredentialsConfig",
    "HealthConfig",
    "KeyPath",
    "ListenConfig",
    "LiveConfig",
    "LoggingConfig",
    "MemoryConfig",
    "MetricsConfig",
    "MissingCredentialError",
    "ReconnectConfig",
    "SpeechGateConfig",
    "UsageConfig",
    "diff_sections",
    "example_config_path",
    "example_config_text",
    "find_api_key",
    "format_key",
    "load_api_key",
    "load_config",
    "parse_config",
    "resolve_config_path",
]
