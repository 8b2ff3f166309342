"""The CI gate: per-language floors (and ceilings) that a seed run must meet, and settings
that nothing outside the test can change.

eval/thresholds.json holds the limits and says how they were set; tests/test_eval_gate.py
runs the extractive seed eval against them and replays altered records to show that a
worse service fails.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from app.settings import PROJECT_ROOT, Settings

THRESHOLDS = PROJECT_ROOT / "eval" / "thresholds.json"


class IsolatedSettings(Settings):
    """Settings from the defaults and the values given, never from SANAD_* variables,
    sanad.toml or secret files: the gate measures the code, not the machine it runs on."""

    model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": None})

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings,
                                   env_settings, dotenv_settings, file_secret_settings,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def load_thresholds(path: Path = THRESHOLDS) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def gate_failures(metrics: dict[str, dict], thresholds: dict) -> list[str]:
    """Every limit the run's metrics break, as "group metric: value vs limit"; a limited
    metric that is missing or does not apply (None) fails too."""
    failures = []
    for kind, breaks in (("floors", lambda v, limit: v < limit),
                         ("ceilings", lambda v, limit: v > limit)):
        for group, limits in thresholds[kind].items():
            for metric, limit in limits.items():
                value = metrics.get(group, {}).get(metric)
                if value is None:
                    failures.append(f"{group} {metric}: missing, {kind[:-1]} {limit}")
                elif breaks(value, limit):
                    failures.append(f"{group} {metric}: {value:.3f}, {kind[:-1]} {limit}")
    return failures
