"""`python -m app`: serve the API with uvicorn on PC_HOST:PC_PORT (default 127.0.0.1:8000)."""

from __future__ import annotations

import uvicorn

from app.core.config import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run("app.main:app", host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
