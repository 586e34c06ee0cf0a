"""The log pipeline: JSON off a TTY, readable on one, every line redacted and one line."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
import structlog
from structlog.testing import capture_logs

from cmis_core.errors import ConfigurationError
from cmis_core.logs import configure_logging, redact_event
from cmis_core.redaction import REDACTED

SECRET = "tok-5ecret-canary-77"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def log_everything() -> None:
    """Our events and library lines, each carrying secrets in a different shape."""
    log = structlog.get_logger("cmis_core.test")
    log.info(
        "auth.token_exchanged",
        access_token=SECRET,
        url=f"https://graph.example.com/oauth/access_token?code={SECRET}&client_id=1",
        headers={"Authorization": f"Bearer {SECRET}", "Accept": "application/json"},
        body={"data": [{"refresh_token": SECRET}]},
        platform="meta",
        note=f'line one\r\n{{"event": "forged"}}\n{TIMESTAMP.pattern} [info] forged',
    )
    logging.getLogger("httpx2").info(
        'HTTP Request: %s %s "%s"',
        "GET",
        f"https://x.example/v1/me?access_token={SECRET}",
        "200 OK",
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        f"/webhooks/meta?hub.mode=subscribe&hub.verify_token={SECRET}&hub.challenge=7",
        "1.1",
        200,
    )
    try:
        raise RuntimeError(f"refresh refused for {{'refresh_token': '{SECRET}'}}\nforged line")
    except RuntimeError:
        log.exception("auth.refresh_failed")
        logging.getLogger("sqlalchemy.engine").exception("library failure")


def test_json_lines_off_a_tty(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(force=True, level="debug")
    log_everything()
    err = capsys.readouterr().err
    assert SECRET not in err
    lines = err.splitlines()
    events = [json.loads(line) for line in lines]
    assert events[0]["event"] == "auth.token_exchanged"
    assert len(events) == 5
    first = events[0]
    assert first["access_token"] == REDACTED
    assert (
        first["url"] == f"https://graph.example.com/oauth/access_token?code={REDACTED}&client_id=1"
    )
    assert first["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert first["body"] == {"data": [{"refresh_token": REDACTED}]}
    assert first["platform"] == "meta"
    assert "\n" not in first["note"]
    assert "\r" not in first["note"]
    assert first["level"] == "info"
    assert first["logger"] == "cmis_core.test"
    assert TIMESTAMP.match(first["timestamp"])
    assert events[1]["logger"] == "httpx2"
    assert f"access_token={REDACTED}" in events[1]["event"]
    assert f"hub.verify_token={REDACTED}&hub.challenge=7" in events[2]["event"]
    for failure in events[3:]:
        assert failure["level"] == "error"
        assert "RuntimeError" in failure["exception"]
        assert f"'refresh_token': '{REDACTED}'" in failure["exception"]


def test_readable_lines_on_a_tty() -> None:
    stream = Tty()
    configure_logging(force=True, stream=stream, level="debug")
    log_everything()
    out = stream.getvalue()
    assert SECRET not in out
    assert "\x1b[" in out  # colours on a terminal
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    event_lines = [line for line in plain.splitlines() if TIMESTAMP.match(line)]
    assert len(event_lines) == 5  # the forged text made no line of its own
    assert "auth.token_exchanged" in event_lines[0]
    assert f"access_token={REDACTED}" in event_lines[0]
    assert "forged" in event_lines[0]
    for line in plain.splitlines():  # traceback lines are indented, never at column 0
        assert TIMESTAMP.match(line) or line.startswith((" ", "Traceback"))


def test_console_format_chosen_explicitly_without_colours(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CMIS_LOG_FORMAT", "console")
    configure_logging(force=True)
    structlog.get_logger("t").warning("sync.slow", token=SECRET, account="act_1")
    err = capsys.readouterr().err
    assert "\x1b[" not in err
    assert "sync.slow" in err
    assert "account=act_1" in err
    assert f"token={REDACTED}" in err
    assert SECRET not in err


def test_the_level_applies_to_our_lines_and_library_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CMIS_LOG_LEVEL", "WARNING")
    configure_logging(force=True)
    structlog.get_logger("t").info("quiet")
    logging.getLogger("httpx2").info("quiet too")
    structlog.get_logger("t").warning("loud")
    logging.getLogger("httpx2").error("loud too")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["loud", "loud too"]


def test_configured_once_unless_forced(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(force=True, fmt="json")
    configure_logging()
    configure_logging(force=True, fmt="json")
    structlog.get_logger("t").info("once")
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_bound_context_reaches_library_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(force=True, fmt="json")
    structlog.contextvars.bind_contextvars(org="acme", state=SECRET)
    logging.getLogger("httpx2").warning("retrying")
    event = json.loads(capsys.readouterr().err)
    assert event["org"] == "acme"
    assert event["state"] == REDACTED


@pytest.mark.parametrize(
    ("variable", "value"), [("CMIS_LOG_LEVEL", "loud"), ("CMIS_LOG_FORMAT", "xml")]
)
def test_a_bad_setting_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        configure_logging(force=True)


def test_the_processor_with_capture_logs() -> None:
    with capture_logs(processors=[redact_event]) as logs:
        structlog.get_logger().info(
            "connect.callback",
            code=SECRET,
            State=SECRET,
            params={"hub.verify_token": SECRET, "hub.challenge": "123"},
            redirect=f"https://app.example/cb?state={SECRET}&code={SECRET}",
            items=[f"Bearer {SECRET}", 3],
            status_code=302,
        )
    assert logs == [
        {
            "event": "connect.callback",
            "code": REDACTED,
            "State": REDACTED,
            "params": {"hub.verify_token": REDACTED, "hub.challenge": "123"},
            "redirect": f"https://app.example/cb?state={REDACTED}&code={REDACTED}",
            "items": [f"Bearer {REDACTED}", 3],
            "status_code": 302,
            "log_level": "info",
        }
    ]


def test_library_handlers_are_replaced_and_sql_statements_stay_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.StreamHandler(io.StringIO()))  # as uvicorn's own config does
    access.propagate = False
    configure_logging(force=True, fmt="json", level="debug")
    access.info('%s - "GET %s HTTP/1.1" 200', "127.0.0.1", f"/cb?code={SECRET}&state={SECRET}")
    logging.getLogger("sqlalchemy.engine.Engine").info("INSERT INTO leads VALUES (?)")
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [e["logger"] for e in events] == ["uvicorn.access"]
    assert (
        events[0]["event"] == f'127.0.0.1 - "GET /cb?code={REDACTED}&state={REDACTED} HTTP/1.1" 200'
    )
    assert access.handlers == []
