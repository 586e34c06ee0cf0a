"""API versions and their sunset dates: warn ahead, refuse after.

Each plugin records its API version's sunset on its platform record
(``Platform.api_version_sunset``). Every run checks it: within :data:`WARN_DAYS` days of
the sunset the run warns (log ``sync.api_version_sunset_soon`` and the run result's
``warnings``); on or after it the run refuses to start with
:class:`~cmis_core.errors.SunsetApiVersion`, naming ``CMIS_<P>_API_VERSION``.

A version chosen with ``CMIS_<P>_API_VERSION`` other than the plugin's own has no date
here; the plugin checks it where it builds its URLs.
"""

from __future__ import annotations

import datetime as dt

import structlog

from cmis_core.errors import SunsetApiVersion
from cmis_core.settings import PlatformSettings
from cmis_core.types import Platform

WARN_DAYS = 30

log = structlog.get_logger(__name__)


def check_api_version(
    platform: Platform, settings: PlatformSettings, *, today: dt.date | None = None
) -> str | None:
    """A warning when the version in use is within 30 days of its sunset, else ``None``.

    Raises :class:`SunsetApiVersion` naming the setting when that version is sunset.
    """
    variable = settings.variable("API_VERSION")
    version = settings.api_version(platform.api_version)
    sunset = platform.api_version_sunset
    if sunset is None or version != platform.api_version:
        return None
    today = today or dt.datetime.now(dt.UTC).date()
    if today >= sunset:
        raise SunsetApiVersion(
            f"{platform.display_name} API {version} was sunset on {sunset:%Y-%m-%d}; "
            f"set {variable} to a live version, or upgrade the plugin",
            hint=f"see {platform.docs_url}" if platform.docs_url else None,
        )
    left = (sunset - today).days
    if left <= WARN_DAYS:
        message = (
            f"{platform.display_name} API {version} is sunset on {sunset:%Y-%m-%d} "
            f"({left} days); upgrade the plugin or set {variable}"
        )
        log.warning(
            "sync.api_version_sunset_soon",
            platform=platform.name,
            version=version,
            sunset=sunset.isoformat(),
            days_left=left,
        )
        return message
    return None
