"""`cmis serve`: the HTTP service (webhooks, OAuth callbacks, the API) on uvicorn."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> int:
    """Serve webhooks, OAuth callbacks and the org-scoped API.

    Point CMIS_PUBLIC_URL at where this is reachable from the platforms.
    """
    from cmis_core.errors import ConfigurationError

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigurationError(
            "the service needs the server extra", hint="pip install 'cmis-core[server]'"
        ) from None
    from cmis_core.service.app import create_app

    if workers > 1:
        uvicorn.run(
            "cmis_core.service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_config=None,
            proxy_headers=True,
        )
    else:
        uvicorn.run(
            create_app(),
            host=host,
            port=port,
            access_log=False,
            log_config=None,
            proxy_headers=True,
        )
    return 0
