"""`python -m app`: serve the API with uvicorn on APP_HOST:APP_PORT (settings from `.env`)."""

from __future__ import annotations

import uvicorn

from app.core.config import get_settings
from app.core.logging import configure_logging


def main() -> None:
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL)
    uvicorn.run(
        "app.main:app",
        host=settings.APP_HOST,
        port=settings.APP_PORT,
        proxy_headers=True,
        forwarded_allow_ips=settings.FORWARDED_ALLOW_IPS,
        log_config=None,
        access_log=False,
        # Terminal output through exec/console is mostly incompressible or tiny: compressing
        # it for every browser that offers permessage-deflate costs CPU that LXD needs.
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
