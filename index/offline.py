"""No model hub is reachable where Sanad runs, and nothing should phone home."""

from __future__ import annotations

import os

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def stay_offline() -> None:
    """Tell Hugging Face libraries to stay offline, unless the environment says otherwise.

    Call it before they are imported: they read these variables once, at import.
    """
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
