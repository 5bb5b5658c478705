"""Settings from the environment (prefix ``REGISTRY_``) and the development defaults that production refuses."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import stat
import string
import tempfile
import time
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated

import limits
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from registry.errors import ConfigurationError
from registry.i18n import _

DEFAULT_DATA_DIR = Path(".registry")
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///./{DEFAULT_DATA_DIR}/registry.db"
DATABASE_DRIVERS = ("postgresql+asyncpg", "sqlite+aiosqlite")  # what registry.db is written for
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")  # REGISTRY_LOG_LEVEL, any case
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
MASTER_KEY_FILE = "master.key"
MAX_BATCH_WORKERS = 64
# How long a key file only just made and still short is read again (``_read_key_file``).
KEY_FILE_SETTLE_SECONDS = 1.0
# FAT keeps a file's mtime in 2 s steps: a file made a moment ago can read as that much older.
MTIME_STEP_SECONDS = 2.0

_log = logging.getLogger(__name__)


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Region(StrEnum):
    BJ = "BJ"
    TJ = "TJ"
    HE = "HE"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore", frozen=True)

    env: Environment = Environment.development
    database_url: str = DEFAULT_DATABASE_URL
    database_read_url: str | None = None
    # The replica (registry.verification.replica) serves verification reads while it answers and has replayed the
    # primary's commits up to this many seconds ago; otherwise the primary serves them.
    read_max_lag_seconds: Annotated[float, Field(ge=0, le=3_600)] = 5.0
    # How often the replica's lag is measured (in the background; no request waits for it).
    read_lag_check_seconds: Annotated[float, Field(gt=0, le=300)] = 1.0
    # How long the replica may take to accept a connection, or to answer one read, before reads go to the primary.
    read_replica_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    # After the replica failed, reads stay on the primary this long; then one probe decides whether they go back.
    read_replica_reset_seconds: Annotated[float, Field(gt=0, le=3_600)] = 5.0
    # Connections per process for public verification on PostgreSQL (its own driver pool, see registry.readpool).
    database_read_pool_size: Annotated[int, Field(ge=1, le=500)] = 20
    # How long a request waits for a free database connection before it is answered 503 with Retry-After.
    database_pool_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    # How long the primary may take to open a connection for a request, or to answer one statement, before the request
    # is answered 503: a server that hangs (stopped, partitioned) is a fault, not a wait as long as the outage.
    database_command_timeout_seconds: Annotated[float, Field(gt=0, le=3_600)] = 10.0
    # `registry import`: how long one of its statements may wait for a lock other work holds (a LOCK TABLE, a
    # migration begun meanwhile, another import's chunk) before the import stops, saying which rows it committed;
    # re-running carries on. Only lock waits are bounded (a slow chunk runs to its end); a shorter lock_timeout set on
    # the database or role stays.
    import_lock_timeout_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    # `registry migrate`, the migration `registry serve` (and every other command but import) runs first: how long one
    # of its statements may wait for a lock another session holds before the run is rolled back and the command exits
    # 4 naming the migration and the holder. Short: on PostgreSQL every later reader of the table queues behind a
    # waiting ALTER TABLE, so the service stalls (then answers 503 busy) for as long as the migration waits.
    migrate_lock_timeout_seconds: Annotated[float, Field(gt=0, le=3_600)] = 10.0
    # `registry serve` (api/server.py): a request's head must be complete this long after the connection opened or
    # the previous answer ended; its body this long after the head, plus a second per HTTP_BODY_BYTES_PER_SECOND it
    # declares. Past either, 408 and the connection is closed: slow clients cannot hold connections for ever.
    http_head_timeout_seconds: Annotated[float, Field(gt=0, le=3_600)] = 10.0
    http_body_timeout_seconds: Annotated[float, Field(gt=0, le=3_600)] = 30.0
    # `registry serve`: while part of an answer waits in the server (the client reads too slowly for the kernel's
    # buffers), some of it must move this often, else the connection is dropped: a client that never reads cannot
    # hold its connection, its request and the unsent answer for ever (nginx's send_timeout, 60 s, likewise).
    http_send_timeout_seconds: Annotated[float, Field(gt=0, le=3_600)] = 60.0
    master_key: SecretStr | None = None
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL
    region: Region = Region.BJ
    data_dir: Path = DEFAULT_DATA_DIR
    token_audience: str = "talent-registry"  # noqa: S105 — an audience name
    access_token_ttl_seconds: Annotated[int, Field(ge=60, le=86_400)] = 900
    # After POST /v1/clients/{id}/rotate-secret the old secret still opens tokens for this long (one day by default),
    # so the client's deployments can switch over; 0 refuses it at once.
    client_secret_grace_seconds: Annotated[int, Field(ge=0, le=30 * 86_400)] = 86_400
    idempotency_ttl_seconds: Annotated[int, Field(ge=60)] = 86_400
    # How long a cache (browser, CDN) may reuse a verification answer: a scan storm of one code reaches the registry
    # once per window, and a revocation reaches every scanner within it. 0 sends ``no-store``.
    verify_max_age_seconds: Annotated[int, Field(ge=0, le=3_600)] = 30
    # How long a signed status list stays valid (its validUntil): an offline verifier holding a saved list trusts it
    # this long, then answers UNKNOWN. Caches keep a list a minute at most (its ttl), never longer than this.
    status_list_validity_seconds: Annotated[int, Field(ge=60, le=7 * 86_400)] = 3_600
    # Worker processes that sign and seal a large batch or an import chunk (registry.workers), per serving process;
    # 0 or 1 keeps that work in the serving process. Unset: ``default_batch_workers`` — the usable cores shared among
    # the serving processes (``registry serve --workers N`` says how many), at least two each, none on one core. On
    # two cores shared with PostgreSQL two workers make a 10,000-row batch over HTTP ~20 % faster and ``registry
    # import`` 1.2x (benchmarks/README.md, "Where a batch's time goes"). In a container held to fewer cores by a CPU
    # quota than it sees, set it.
    # Batches under ``batch_parallel_min_rows`` always stay in process (a hand-over costs more than it saves there).
    batch_workers: Annotated[int | None, Field(ge=0, le=MAX_BATCH_WORKERS)] = None
    batch_parallel_min_rows: Annotated[int, Field(ge=1)] = 200
    # One of LOG_LEVELS, in any case (stored in capitals): what ``logging`` and uvicorn both know.
    log_level: str = "INFO"
    # Federation: the other regions' nodes (region -> base URL, e.g. {"TJ": "http://10.0.0.2:8000"}). A question about
    # a certificate whose number carries one of these regions is answered by that region's node.
    peers: dict[Region, str] = Field(default_factory=dict)
    # How stale a peer's answer may be when reused; 0 asks the peer every time.
    peer_cache_seconds: Annotated[int, Field(ge=0, le=3_600)] = 60
    # Per attempt; a question is tried at most ``peer_attempts`` times, and never longer than twice this in all.
    peer_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    peer_attempts: Annotated[int, Field(ge=1, le=5)] = 2
    # After 3 failures in a row a peer is not asked for this long (answers are ``unknown`` at once); then one trial.
    peer_reset_seconds: Annotated[float, Field(gt=0, le=3_600)] = 10.0
    # Who looked (registry.verification.visits): each verification of a holder's certificate is recorded for the
    # holder; false records nothing (benchmarks/README.md compares the two).
    record_visits: bool = True
    # Optional: holders may also sign in with a token from an external identity provider.
    holder_idp_jwks_url: str | None = None
    holder_idp_issuer: str | None = None
    holder_idp_audience: str | None = None
    holder_idp_id_claim: str = "id_number"
    holder_idp_id_type_claim: str | None = None
    # Abuse limits (api/limits.py), in the `limits` library's notation ("120/minute", "10/minute;60/hour"); "" or "0"
    # turns one off, REGISTRY_RATE_LIMITS_ENABLED=false all of them. Counted in Redis when REGISTRY_REDIS_URL is set
    # (shared by every process), else in each process.
    rate_limits_enabled: bool = True
    redis_url: str | None = None  # redis://host:6379/0, rediss://… or unix:///path.sock
    redis_key_prefix: str = "talent-registry"  # several registries (or test runs) can share one Redis
    rate_limit_verify: str = "120/minute"  # per client address, all public verification routes together
    rate_limit_verify_number: str = "10/minute;60/hour"  # per certificate number asked by number + name
    rate_limit_token: str = "30/minute"  # noqa: S105 — a rate: per client address, POST /oauth/token
    rate_limit_token_client: str = "20/minute"  # noqa: S105 — a rate: per client_id, POST /oauth/token
    rate_limit_holder_sign_in: str = "10/minute"  # per client address, POST /v1/holder/sessions
    # /docs, /redoc and /openapi.json; unset: on, except in production.
    docs: bool | None = None
    # /metrics; unset: on, except in production. With a token, only ``Authorization: Bearer <token>`` may read it.
    metrics: bool | None = None
    metrics_token: SecretStr | None = None

    @field_validator(
        "rate_limit_verify",
        "rate_limit_verify_number",
        "rate_limit_token",
        "rate_limit_token_client",
        "rate_limit_holder_sign_in",
    )
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        value = value.strip()
        if value in ("", "0"):
            return ""
        limits.parse_many(value)  # ValueError names the notation it could not read
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        """A level ``logging`` knows: any other (uvicorn's ``trace``, a typo) would stop `registry serve` with a
        traceback when its logging is set up."""
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"REGISTRY_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)} (in any case)")
        return level

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REGISTRY_REDIS_URL must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url", "database_read_url")
    @classmethod
    def _database_driver(cls, value: str | None) -> str | None:
        """A URL naming a driver registry.db is written for (asyncpg's pool and timeouts, aiosqlite's pragmas): to
        SQLAlchemy a bare postgresql:// means psycopg, which is not installed, and would end in a traceback. Said by
        its variable (pydantic names it) and driver, never the URL, which may hold a password."""
        if not value:
            return value
        try:
            driver = make_url(value).drivername  # letters, digits, _ and + only: no part of the credentials
        except (ArgumentError, ValueError):
            raise ValueError(
                "not a database URL (postgresql+asyncpg://user:password@host:5432/database or "
                "sqlite+aiosqlite:///path/to/registry.db)"
            ) from None
        if driver not in DATABASE_DRIVERS:
            raise ValueError(f"must use the postgresql+asyncpg:// or sqlite+aiosqlite:// driver, not {driver}://")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("peers")
    @classmethod
    def _peer_urls(cls, value: dict[Region, str]) -> dict[Region, str]:
        for region, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"the peer URL for {region} must start with http:// or https://")
        return {region: url.rstrip("/") for region, url in value.items()}

    @model_validator(mode="after")
    def _peers_are_other_regions(self) -> Settings:
        if self.region in self.peers:
            raise ValueError(f"REGISTRY_PEERS names this node's own region {self.region}: a node never asks itself")
        return self

    @field_validator("master_key")
    @classmethod
    def _master_key_is_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _parse_master_key(value.get_secret_value())
        return value

    @property
    def token_issuer(self) -> str:
        return self.public_base_url

    def base_url_for_serving(self, host: str, port: int) -> str | None:
        """The public base URL ``registry serve --host H --port P`` derives when REGISTRY_PUBLIC_BASE_URL is unset
        outside production (None: keep the configured one). Links, QR codes and credentials then point at the port
        actually served; the access-token issuer follows it, so a client's token from a run on another port is refused
        (401) and it asks for a new one — set REGISTRY_PUBLIC_BASE_URL to keep one address across runs."""
        if "public_base_url" in self.model_fields_set or self.env is Environment.production:
            return None
        return served_base_url(host, port)

    @cached_property
    def master_key_bytes(self) -> bytes:
        """The 32-byte master key: configured, or (outside production) generated once and kept in the data folder."""
        if self.master_key is not None:
            return _parse_master_key(self.master_key.get_secret_value())
        if self.env is Environment.production:
            raise ConfigurationError("REGISTRY_MASTER_KEY is required in production")
        return development_master_key(self.data_dir)

    @property
    def batch_worker_count(self) -> int:
        """``batch_workers``, or when it is unset ``default_batch_workers()``."""
        return self.batch_workers if self.batch_workers is not None else default_batch_workers()

    @property
    def docs_enabled(self) -> bool:
        return self.docs if self.docs is not None else self.env is not Environment.production

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics if self.metrics is not None else self.env is not Environment.production

    def check_production(self) -> None:
        """Refuse to run in production on anything that is only fit for a developer's machine."""
        if self.env is not Environment.production:
            return
        problems = []
        if self.master_key is None:
            problems.append("REGISTRY_MASTER_KEY is not set (a development key would be generated)")
        elif len(set(_parse_master_key(self.master_key.get_secret_value()))) == 1:
            # 00…00, ab…ab: a placeholder, never drawn at random (a random key of one repeated byte: 2⁻²⁴⁸).
            problems.append("REGISTRY_MASTER_KEY must be random (a key of one repeated byte is refused)")
        if self.database_url == DEFAULT_DATABASE_URL or self.database_url.startswith("sqlite"):
            problems.append("REGISTRY_DATABASE_URL is the embedded SQLite default")
        if self.public_base_url == DEFAULT_PUBLIC_BASE_URL or not self.public_base_url.startswith("https://"):
            problems.append("REGISTRY_PUBLIC_BASE_URL must be the public https:// address")
        # A peer's answers are checked against the keys its JWKS publishes, fetched from its URL: over plain http,
        # whoever is on the way would publish their own. Named by region, never by URL (it may hold credentials).
        plain = sorted(region.value for region, url in self.peers.items() if not url.startswith("https://"))
        if plain:
            problems.append(f"REGISTRY_PEERS must give every peer an https:// URL (not so for {', '.join(plain)})")
        # The identity provider's key set says whose tokens name an identity number: over plain http, whoever is on
        # the way could publish their own key and sign in as any holder.
        if self.holder_idp_jwks_url and not self.holder_idp_jwks_url.startswith("https://"):
            problems.append("REGISTRY_HOLDER_IDP_JWKS_URL must be an https:// URL")
        if problems:
            raise ConfigurationError("refusing to start in production: " + "; ".join(problems))


def default_batch_workers(serving_processes: int = 1) -> int:
    """The signing workers each of ``serving_processes`` gets by default: the usable cores shared among them, but at
    least two each (a batch is served by one process, and its signing then has the other cores), none on one core,
    at most ``MAX_BATCH_WORKERS``. ``registry serve --workers 16`` on 16 cores: 2 each, 32 in all, not 256."""
    cores = usable_cores()
    if cores < 2:
        return 0
    return min(max(cores // max(serving_processes, 1), 2), MAX_BATCH_WORKERS)


@functools.cache
def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), which a container's cpuset narrows; a CPU quota it does
    not see (``REGISTRY_BATCH_WORKERS`` is then the operator's to set). Read once: a pool sized again mid-run would be
    replaced under a batch that is using it."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


def served_base_url(host: str, port: int) -> str:
    """``http://H:P`` for a listening address: a wildcard bind (0.0.0.0, ::) is reached on 127.0.0.1 from this
    machine, and an IPv6 literal goes in brackets."""
    host = host.strip().strip("[]")
    if host in ("", "0.0.0.0", "::", "*"):  # noqa: S104 — recognising a wildcard, not binding  # nosec B104
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def development_master_key(folder: Path) -> bytes:
    """The key kept in ``folder/master.key``, made there on first use. The file appears whole or not at all: the key
    is written and synced to a file of its own (0600 from the start, never chmod-ed after the write: another user
    could open it in between), then hard-linked to the final name, which never overwrites. Processes starting
    together (``registry serve --workers 2``, two commands) each draw a key; the first link wins and the others read
    the winner's whole file, never a file created but not yet written. Where the folder's filesystem has no hard
    links, the key is written in place (``_write_in_place``) and a reader gives a short file a moment to be whole."""
    path = folder / MASTER_KEY_FILE
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # the database beside it: the owner's alone
        _check_private(folder, os.stat(folder).st_mode, "700")
        if not os.path.lexists(path):
            _write_key_file(path)
        text = _read_key_file(path)
    except OSError as error:  # a dangling link, a folder that cannot be written: said plainly, not as a traceback
        raise ConfigurationError(
            _(
                "the development master key file {path} cannot be made or read ({reason}): set REGISTRY_MASTER_KEY, "
                "or REGISTRY_DATA_DIR to a folder of your own",
                path=str(path),
                reason=error.strerror or type(error).__name__,
            )
        ) from None
    try:
        return _parse_master_key(text)
    except ValueError:
        # Never the content: it may be most of a key.
        raise ConfigurationError(
            _(
                "the development master key file {path} is empty or damaged ({count} characters where 64 hexadecimal "
                "digits are expected): restore it from a backup, or, if the database holds nothing sealed under it "
                "yet, delete it and a new key is made",
                path=str(path),
                count=len(text),
            )
        ) from None


def _write_key_file(path: Path) -> None:
    """A new key at ``path`` unless another process put one there first (module: ``development_master_key``)."""
    key = (secrets.token_hex(32) + "\n").encode("ascii")
    created, drafted = tempfile.mkstemp(prefix=f".{MASTER_KEY_FILE}.", dir=path.parent)  # 0600, O_EXCL|O_NOFOLLOW
    try:
        with os.fdopen(created, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(drafted, path)
        except FileExistsError:  # another process's key is there, whole: that one is kept
            pass
        except OSError:  # no hard links on this filesystem (EPERM, ENOTSUP: some network, FUSE and FAT mounts)
            _write_in_place(path, key)
    finally:
        os.unlink(drafted)
    with contextlib.suppress(OSError):  # the new name kept across a crash, where folders can be synced
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _write_in_place(path: Path, key: bytes) -> None:
    """``key`` written to ``path`` created O_EXCL (never over another process's key, nor through a link planted
    there), 0600 from the start, in one write: a reader that finds it still short waits (``_read_key_file``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        created = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    written = 0
    try:
        while written < len(key):  # a write may take less than it was given (a signal, a network mount)
            written += os.write(created, key[written:])
        os.fsync(created)
    except BaseException:
        # Not left empty or short: the next start would call it damaged and ask for a backup of a key never used. A
        # whole key stays (its sync failed): another process may have read it already and sealed under it.
        if written < len(key):
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    finally:
        os.close(created)


def _read_key_file(path: Path) -> str:
    """What the key file holds, read from the file whose mode is checked (not one swapped in since). A file that is
    not a regular one is refused rather than read (a FIFO would hang start-up). A file still short and only just
    made — another process writing it in place (``_write_in_place``) — is read again for up to
    KEY_FILE_SETTLE_SECONDS ("just made" allowing for FAT's coarse mtime, MTIME_STEP_SECONDS); an old short file is
    reported damaged at once, and one whose mtime is ahead of the clock (a server's) after that wait."""
    deadline = time.monotonic() + KEY_FILE_SETTLE_SECONDS
    while True:
        try:
            text, status = _read_key_file_once(path)
        except BlockingIOError:
            # EAGAIN: another program holds a lease on the file (Samba, an NFS server), which a non-blocking open
            # does not wait for; the open asked it to let go, so it is tried again, for as long as a short file.
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
            continue
        young = time.time() - status.st_mtime < KEY_FILE_SETTLE_SECONDS + MTIME_STEP_SECONDS
        short = len(text) < 64 and all(character in string.hexdigits for character in text)
        if not (short and young) or time.monotonic() >= deadline:
            return text
        time.sleep(0.02)


def _read_key_file_once(path: Path) -> tuple[str, os.stat_result]:
    """The key file's text and the status of the file it was read from (``_read_key_file``)."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer that never comes.
    opened = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        status = os.fstat(opened)
        if not stat.S_ISREG(status.st_mode):
            raise ConfigurationError(
                _(
                    "the development master key file {path} is not a regular file: replace it with the key "
                    "file, or set REGISTRY_MASTER_KEY",
                    path=str(path),
                )
            )
        _check_private(path, status.st_mode, "600")
        return os.read(opened, 4096).decode("ascii", errors="replace").strip(), status
    finally:
        os.close(opened)


def _check_private(path: Path, mode: int, private: str) -> None:
    """The key file (``private`` "600") or its folder ("700") open to other users: a warning when they can read it,
    a refusal (ConfigurationError) when they can write it — they could put a key of their own in its place. Named by
    path and mode, never with the key."""
    if os.name == "nt":  # POSIX modes say nothing there
        return
    bits = stat.S_IMODE(mode)
    shown = format(bits, "04o")
    if bits & 0o022:
        raise ConfigurationError(
            _(
                "{path} can be written by other users (mode {mode}): they could put a master key of their own in "
                "its place. Run `chmod {private} {path}` (or set REGISTRY_DATA_DIR to a folder of your own)",
                path=str(path),
                mode=shown,
                private=private,
            )
        )
    if bits & 0o077:
        _log.warning(
            "%s is open to other users (mode %s), who may read the development master key: run `chmod %s %s`",
            path,
            shown,
            private,
            path,
        )


def _parse_master_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError("master key must be 64 hexadecimal characters") from None
    if len(key) != 32:
        raise ValueError("master key must be 32 bytes (64 hexadecimal characters)")
    return key
