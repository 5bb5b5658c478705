"""What the logs' second line of defence (``api.logs``) must also catch: secrets in the shapes Python writes them, claim
codes however a holder types them, share links, the holder's cookie, full-width identity numbers, a secret sent as a
request id, and SQL with its bound values at DEBUG; and what it must leave alone (the class of an error)."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator

import aiosqlite
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from api.logs import REQUEST_ID_HEADER, JsonFormatter, RequestLogMiddleware, log_config, redact

CLIENT_SECRET = "uNxOb9ojDjULOgX7h6Gpptoh1GVb4yDMCkyYlr5yPzs"
HOLDER_JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJob2xkZXIifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"form {{'grant_type': 'client_credentials', 'client_secret': '{CLIENT_SECRET}'}}", CLIENT_SECRET),
        ("claim_code\n  String should match pattern [input_value='q7xk-2m9d-8hvw', input_type=str]", "q7xk-2m9d-8hvw"),
        (
            "name\n  String too long [type=string_too_long, input_value='钱七 11010519491231002', input_type=str]",
            "钱七",
        ),
        ("claim bfr1-t1zv-6fj2 refused", "bfr1-t1zv-6fj2"),
        ("claim BFR1T1ZV6FJ2 refused", "BFR1T1ZV6FJ2"),
        ("claim bfr1t1zv6fj2 refused", "bfr1t1zv6fj2"),
        ("GET /s/cyfO92rTiYk_sdiMIUf4GZPvb9rMIRYi failed", "cyfO92rTiYk_sdiMIUf4GZPvb9rMIRYi"),
        (f"headers [(b'cookie', b'tr_holder={HOLDER_JWT}')]", HOLDER_JWT),
        ("id １１０１０５１９４９１２３１００２Ｘ", "１１０１０５１９４９１２３１００２Ｘ"),
    ],
    ids=[
        "repr of a form",
        "pydantic input_value",
        "pydantic input_value of a name",
        "lower-case claim code",
        "claim code without hyphens",
        "lower-case claim code without hyphens",
        "share link",
        "holder cookie",
        "full-width identity number",
    ],
)
def test_redact_masks_secrets_in_the_shapes_python_and_people_write_them(line: str, secret: str) -> None:
    redacted = redact(line)
    assert secret not in redacted
    assert "1101051949123100" not in redacted


def test_redact_keeps_the_error_class_after_the_token_route() -> None:
    line = "database fault (unreachable) on POST /oauth/token: ConnectionRefusedError"
    assert redact(line) == line
    assert redact("POST /oauth/token client_secret=abc") == "POST /oauth/token client_secret=[redacted]"


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    logging.getLogger("registry.test").info("answering")
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class _Lines(logging.Handler):
    """Every record as ``registry serve`` writes it, formatted when it is written (the request id is the request's)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.mark.parametrize(
    "sent",
    ["11010519491231002X", "BFR1-T1ZV-6FJ2", "claim_code:BFR1T1ZV6FJ2", CLIENT_SECRET, HOLDER_JWT],
    ids=["identity number", "claim code", "named claim code", "client secret", "holder token"],
)
async def test_a_request_id_that_is_a_secret_is_replaced_before_it_reaches_any_line(sent: str) -> None:
    written = _Lines()
    # Written to directly: whatever an earlier test did to the logging tree (levels, disabled loggers) holds no sway.
    loggers = [logging.getLogger(name) for name in ("registry.access", "registry.test")]
    saved = [(logger, logger.level, logger.disabled, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(written)
        logger.setLevel(logging.INFO)
        logger.disabled, logger.propagate = False, False
    try:
        transport = httpx.ASGITransport(app=RequestLogMiddleware(_answer))
        async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
            replaced = await http.get("/v1/verify", headers={REQUEST_ID_HEADER: sent})
            kept = await http.get("/v1/verify", headers={REQUEST_ID_HEADER: "3f2b9c1e-7a4d-4e8f-9b6a-0c5d2e1f4a3b"})
    finally:
        for logger, level, disabled, propagate in saved:
            logger.removeHandler(written)
            logger.setLevel(level)
            logger.disabled, logger.propagate = disabled, propagate
    assert len([line for line in written.lines if '"request_id"' in line]) == 4  # two lines for each request
    assert not [line for line in written.lines if sent in line]
    assert replaced.headers[REQUEST_ID_HEADER] != sent
    assert kept.headers[REQUEST_ID_HEADER] == "3f2b9c1e-7a4d-4e8f-9b6a-0c5d2e1f4a3b"


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """``log_config`` is applied to the process's logging: put back what pytest set up."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = [logging.getLogger(name) for name in log_config("INFO")["loggers"]]
    saved = [(logger, logger.level, logger.handlers[:], logger.propagate) for logger in loggers]
    yield
    root.handlers[:], root.level = handlers, level
    for logger, logger_level, logger_handlers, propagate in saved:
        logger.setLevel(logger_level)
        logger.handlers[:], logger.propagate = logger_handlers, propagate


async def test_debug_level_logs_no_sql_statement_with_its_values(
    logging_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(log_config("DEBUG"))
    async with aiosqlite.connect(":memory:") as database:
        await database.execute("SELECT ?", ("qr-token-7Hq2mXk9",))
    assert logging.getLogger("registry").isEnabledFor(logging.DEBUG)  # the level really was DEBUG
    assert "qr-token-7Hq2mXk9" not in capsys.readouterr().out
