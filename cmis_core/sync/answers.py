"""One call's answer through ``ctx.http``: read whole (:func:`request_json`) or as it
arrives (:func:`json_chunks`), an error answer turned into the typed error it means.

Every response goes through :func:`raise_for_response`: the platform's ``classify`` turns
an error answer into the typed error it means, with a generic mapping as the fallback.
The paging shapes (:mod:`cmis_core.sync.paging`) are built on these, and re-export them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2

from cmis_core.errors import Fatal, PlatformError, RateLimited, TokenRejected, Transient
from cmis_core.http.scope import STREAM
from cmis_core.sync.json_answer import array_chunks
from cmis_core.types import Platform, PlatformContext

Params = Mapping[str, Any]

CHUNK = 100
"""Items a page read as it arrives is parsed, mapped and queued by (``chunk=CHUNK``): a few
hundred kilobytes of parsed JSON at a time, whatever the platform's page size; smaller
costs calls into the writer, larger costs memory (docs/benchmarks.md)."""


def retry_after(response: httpx2.Response) -> float | None:
    """The ``Retry-After`` header in seconds, when it is a number."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def default_error(platform: str, response: httpx2.Response) -> PlatformError:
    """The typed error a non-2xx answer means when the platform's ``classify`` has no opinion."""
    status = response.status_code
    text = f"{platform} answered HTTP {status}"
    if status == 401:
        return TokenRejected(text, platform=platform, status=status)
    if status == 429:
        return RateLimited(
            text, retry_after=retry_after(response), platform=platform, status=status
        )
    if status >= 500 or status == 408:
        return Transient(text, platform=platform, status=status)
    return Fatal(text, platform=platform, status=status)


def raise_for_response(platform: Platform, response: httpx2.Response) -> None:
    """Raise the typed error ``response`` means (``platform.classify`` first); pass on success."""
    error = platform.classify(response) if platform.classify is not None else None
    if error is not None:
        raise error
    if not response.is_success:
        raise default_error(platform.name, response)


async def request_json(
    ctx: PlatformContext,
    method: str,
    url: str,
    *,
    params: Params | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """One call through ``ctx.http``: network failures are Transient, errors classified."""
    name = ctx.platform.name
    try:
        response = await ctx.http.request(method, url, params=params, json=json, headers=headers)
    except httpx2.TimeoutException:
        raise Transient(f"{name}: the request timed out", platform=name) from None
    except httpx2.TransportError as exc:
        raise Transient(f"{name}: network error ({type(exc).__name__})", platform=name) from None
    raise_for_response(ctx.platform, response)
    try:
        return response.json()
    except ValueError:
        raise Transient(f"{name} answered a body that is not JSON", platform=name) from None


BODY_ATTEMPTS = 3
"""Times :func:`json_chunks` asks again when an answer breaks off while its body is read."""


async def json_chunks(
    ctx: PlatformContext,
    method: str,
    url: str,
    *,
    member: str,
    rest: dict[str, Any],
    size: int,
    params: Params | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[list[Any]]:
    """One call whose answer is a JSON object with a long array ``member`` (a 10,000-row
    Google page, say), read as it arrives: the array's items ``size`` at a time, the other
    members in ``rest`` once the last chunk is yielded (:mod:`cmis_core.sync.json_answer`).
    Only a few items are in memory at once, never the page's text.

    Errors as :func:`request_json` (the client has retried what it retries). An answer that
    breaks off while its body is read, or is not one JSON object, is asked for again, up to
    :data:`BODY_ATTEMPTS` times in all, and then raises :class:`~cmis_core.errors.Transient`.
    Items yielded before the break are yielded again (writes are idempotent).
    """
    name = ctx.platform.name
    for attempt in range(1, BODY_ATTEMPTS + 1):
        answered = False
        try:
            async with ctx.http.stream(
                method, url, params=params, json=json, headers=headers, extensions={STREAM: True}
            ) as response:
                if not response.is_success:  # the governed client raised already; a bare one not
                    await response.aread()
                    raise_for_response(ctx.platform, response)
                answered = True
                async for chunk in array_chunks(response.aiter_bytes(), member, rest, size):
                    yield chunk
            return
        except ValueError as exc:
            broken: Transient = Transient(
                f"{name} answered a body that is not the JSON expected ({exc})", platform=name
            )
        except httpx2.TimeoutException:
            broken = Transient(f"{name}: the request timed out", platform=name)
        except httpx2.TransportError as exc:
            broken = Transient(f"{name}: network error ({type(exc).__name__})", platform=name)
        except Transient as exc:
            broken = exc
        if not answered or attempt == BODY_ATTEMPTS:
            raise broken
        ctx.log.info("sync.answer_broken", platform=name, attempt=attempt, error=broken.message)
        rest.clear()
    raise AssertionError("unreachable: the last attempt returns or raises")
