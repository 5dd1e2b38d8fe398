"""`python -m app`: serve the API with uvicorn on PC_HOST:PC_PORT (default 127.0.0.1:8000)."""

from __future__ import annotations

import copy
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from app.core.config import get_settings


def log_config() -> dict[str, Any]:
    """uvicorn's own log format, also for the service's loggers (`app.*`) from INFO up: what
    the runner says at start and stop (runs recovered, runs handed back) reaches the terminal."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["app"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def main() -> None:
    settings = get_settings()
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, log_config=log_config())


if __name__ == "__main__":
    main()
