"""`cmis serve`: the HTTP service (webhooks, OAuth callbacks, the API) on uvicorn.

uvicorn runs with uvloop and httptools when installed (``uvicorn[standard]``), each answer
sent in one write (:mod:`cmis_core.service.corked`), no ``Server`` header, and its own
access log off (the service logs each request itself, with query values masked).
"""

from __future__ import annotations

from typing import Any

import click

CORKED_HTTP = "cmis_core.service.corked:CorkedHttpToolsProtocol"


def uvicorn_options(host: str, port: int, backlog: int) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` for the service (one worker or many)."""
    try:
        import httptools  # noqa: F401

        http = CORKED_HTTP
    except ImportError:
        http = "auto"
    return {
        "host": host,
        "port": port,
        "backlog": backlog,
        "http": http,
        "loop": "auto",
        "access_log": False,
        "log_config": None,
        "proxy_headers": True,
        "server_header": False,
    }


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--backlog",
    default=2048,
    show_default=True,
    type=click.IntRange(16, 65535),
    help="Connections the kernel queues before they are accepted.",
)
def serve(host: str, port: int, workers: int, backlog: int) -> int:
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

    options = uvicorn_options(host, port, backlog)
    if workers > 1:
        uvicorn.run("cmis_core.service.app:create_app", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(), **options)
    return 0
