"""A sync run in its own process, for the kill-and-resume test.

    python -m tests.sync.killable PLATFORM ORG_ID TOKENS_FILE

Settings (database, sandbox URLs) come from the environment; the tokens from a file the
test wrote (JSON, as the vault would hold them). Prints the run's result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from cmis_core.settings import Settings
from cmis_core.store import open_store
from cmis_core.types import TokenSet

from .helpers import registry_for, run_sync


async def main(platform: str, org_id: int, tokens: TokenSet) -> None:
    settings = Settings.from_env()
    with open_store(settings) as store:
        result = await run_sync(
            store, registry_for(platform), settings, org_id=org_id, platform=platform, tokens=tokens
        )
    print(json.dumps(result.to_json()))


if __name__ == "__main__":
    tokens = TokenSet.from_json(Path(sys.argv[3]).read_text())
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), tokens))
