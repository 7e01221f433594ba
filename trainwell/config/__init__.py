"""Run configuration: the "pre-set hyper-parameters" of a run, validated.

:mod:`~trainwell.config.sections` holds every key with its default and its
check; :mod:`~trainwell.config.load` reads YAML and ``--set`` overrides and
turns every mistake into one readable :class:`ConfigError` line.
"""

from trainwell.config.load import apply_overrides, load_config, parse_overrides, resolve_config
from trainwell.config.sections import (HISTORY_KEYS, AugmentConfig, CheckpointConfig, ClipConfig, Config,
                                       ConfigError, DataConfig, DoctorConfig, EarlyStoppingConfig, ImbalanceConfig,
                                       LogConfig, ModelConfig, OneClassConfig, OptimConfig, RegConfig, ScheduleConfig,
                                       TrainConfig)

__all__ = ["HISTORY_KEYS", "AugmentConfig", "CheckpointConfig", "ClipConfig", "Config", "ConfigError", "DataConfig",
           "DoctorConfig", "EarlyStoppingConfig", "ImbalanceConfig", "LogConfig", "ModelConfig", "OneClassConfig",
           "OptimConfig", "RegConfig",
           "ScheduleConfig", "TrainConfig", "apply_overrides", "load_config", "parse_overrides", "resolve_config"]
