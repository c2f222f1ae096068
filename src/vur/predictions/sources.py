"""External SQL sources: which URLs are accepted, how they are opened (read-only, always)
and how their newest rows are read.

A source is a table or a single SELECT, with a timestamp column, a value column,
optionally a series column, and the exogenous columns a model needs (their future
values are the rows ahead whose value is still missing). PostgreSQL and MySQL must name a network host (not a
socket path, not a link-local or metadata address, and one of `source_allowed_hosts`
when that list is set) and carry no URL options but the few in URL_OPTIONS; SQLite files
must lie in the workspace's own folder of the installation's sources folder. Every query
is stopped after SOURCE_QUERY_SECONDS.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from vur.core.db import naive_utc
from vur.settings import Settings

# The driver each dialect is opened with, whatever the URL named.
DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql", "sqlite": "sqlite"}
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
CONNECT_TIMEOUT_SECONDS = 5
# One query's time limit (the server stops it; SQLite, a progress handler): a slow source
# would otherwise hold a connection test, or the scheduler thread that runs every stream.
SOURCE_QUERY_SECONDS = 10
# The only URL options a source may carry. Others can name files or services on the VUR
# server (libpq's service, sslrootcert, passfile; pymysql's ssl_ca, read_default_file),
# which would read them or lead to hosts the checks above never saw.
URL_OPTIONS = {"postgresql": frozenset({"sslmode", "application_name"}), "mysql": frozenset({"charset"})}


class SourceTimeout(Exception):
    """A source query ran past SOURCE_QUERY_SECONDS and was stopped."""


class SourceProblem(ValueError):
    """What is wrong with a source definition: {field: reason}."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class SourceSpec:
    url: str
    table_name: str | None
    query: str | None
    timestamp_column: str
    value_column: str
    series_column: str | None
    exogenous_columns: tuple[str, ...] = ()


def checked_url(raw: str, settings: Settings, workspace_id: uuid.UUID) -> URL:
    """The URL with its driver fixed, or SourceProblem saying why it is refused."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:
        raise SourceProblem({"url": f"not a database URL: {exc}"}) from exc
    dialect = url.get_backend_name()
    if dialect not in DRIVERS:
        raise SourceProblem({"url": f"dialect {dialect!r} is not supported; use postgresql, mysql or sqlite"})
    url = url.set(drivername=DRIVERS[dialect])
    if dialect == "sqlite":
        return _checked_sqlite(url, settings, workspace_id)
    if refused := sorted(set(url.query) - URL_OPTIONS[dialect]):
        allowed = ", ".join(sorted(URL_OPTIONS[dialect]))
        raise SourceProblem({"url": f"the URL option {refused[0]!r} is not accepted; a {dialect} source URL may carry only {allowed}"})
    host = url.host or ""
    if not host or host.startswith("/"):
        raise SourceProblem({"url": "name a network host; socket paths and files are not accepted"})
    if _forbidden_address(host):
        raise SourceProblem({"url": f"host {host!r} is a link-local, metadata or unspecified address"})
    if settings.source_allowed_hosts and host.lower() not in {h.lower() for h in settings.source_allowed_hosts}:
        raise SourceProblem({"url": f"host {host!r} is not among the allowed source hosts"})
    if not url.database:
        raise SourceProblem({"url": "name the database"})
    return url


def _checked_sqlite(url: URL, settings: Settings, workspace_id: uuid.UUID) -> URL:
    """A file in the workspace's folder of the sources folder: no workspace reads another's."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise SourceProblem({"url": "name an SQLite file in the workspace's sources folder"})
    folder = (settings.sources_dir / str(workspace_id)).resolve()
    path = (folder / url.database).resolve() if not Path(url.database).is_absolute() else Path(url.database).resolve()
    if not path.is_relative_to(folder):
        raise SourceProblem({"url": f"this workspace's SQLite sources must be files in {folder}; this URL points elsewhere"})
    return url.set(database=str(path), query={})


def _forbidden_address(host: str) -> bool:
    address = _ip_literal(host.strip("[]"))
    if address is None:
        return host.lower().rstrip(".") in ("metadata.google.internal", "metadata")
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address written as IPv6 reaches the IPv4 host: judge that one too.
        address = address.ipv4_mapped or address.sixtofour or address
    return address.is_link_local or address.is_unspecified or address.is_multicast


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names by number, in any spelling the resolver accepts: dotted,
    but also one integer, hex, octal or short forms (2852039166 is 169.254.169.254)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def checked_spec(
    url: URL, table_name: str | None, query: str | None, timestamp_column: str, value_column: str, series_column: str | None, exogenous_columns: list[str]
) -> None:
    problems: dict[str, str] = {}
    if (table_name is None) == (query is None):
        problems["table_name"] = "give either table_name or query"
    if table_name is not None and not IDENTIFIER.match(table_name):
        problems["table_name"] = "a table name (letters, digits, underscores; optionally schema.table)"
    if query is not None and not _single_select(query):
        problems["query"] = "one SELECT (or WITH ... SELECT) statement"
    for field, name in (("timestamp_column", timestamp_column), ("value_column", value_column), ("series_column", series_column)):
        if name is not None and not IDENTIFIER.match(name):
            problems[field] = "a column name (letters, digits, underscores)"
    if bad := [name for name in exogenous_columns if not IDENTIFIER.match(name)]:
        problems["exogenous_columns"] = f"column names (letters, digits, underscores), not {bad[:3]}"
    elif taken := sorted({timestamp_column, value_column, series_column} & set(exogenous_columns)) or len(set(exogenous_columns)) < len(exogenous_columns):
        problems["exogenous_columns"] = f"distinct columns other than the timestamp, value and series ones ({taken or 'repeated names'})"
    if problems:
        raise SourceProblem(problems)


def _single_select(query: str) -> bool:
    body = query.strip().rstrip(";").strip()
    return bool(re.match(r"(?is)^(select|with)\b", body)) and ";" not in body


class ForbiddenHost(Exception):
    """The source's host name resolves to an address a source may not have."""


def _resolved(host: str, port: int | None) -> str:
    """The address to connect to: `host` looked up once here, refused when it names a
    link-local, metadata or unspecified address (registration judges only literals), and
    handed to the driver so that a second lookup (DNS rebinding) cannot lead elsewhere."""
    addresses = [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    if bad := next((address for address in addresses if _forbidden_address(address)), None):
        raise ForbiddenHost(f"host {host!r} resolves to {bad}, a link-local, metadata or unspecified address")
    return addresses[0]


def open_engine(url: str) -> Engine:
    """An engine that can only read: the session is read-only on the server side
    (PostgreSQL, MySQL) or the file is opened read-only (SQLite); a query is stopped
    after SOURCE_QUERY_SECONDS. A network host is connected to at the address it
    resolves to now (`_resolved`)."""
    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    if dialect == "sqlite":
        engine = sa.create_engine(f"sqlite:///file:{parsed.database}?mode=ro&uri=true", poolclass=NullPool)
        sa.event.listen(engine, "connect", _sqlite_deadline)
        return engine
    address = _resolved(parsed.host or "", parsed.port)
    if dialect == "postgresql":
        # libpq connects to hostaddr and keeps host for authentication and TLS.
        options = f"-c default_transaction_read_only=on -c statement_timeout={round(SOURCE_QUERY_SECONDS * 1000)}"
        args = {"options": options, "connect_timeout": CONNECT_TIMEOUT_SECONDS, "hostaddr": address}
        return sa.create_engine(parsed, poolclass=NullPool, connect_args=args)
    # The server stops the query (_mysql_session); read_timeout is for a server that does not.
    args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "read_timeout": SOURCE_QUERY_SECONDS + CONNECT_TIMEOUT_SECONDS}
    engine = sa.create_engine(parsed.set(host=address), poolclass=NullPool, connect_args=args)
    sa.event.listen(engine, "connect", _mysql_session)
    return engine


def _mysql_session(connection: Any, _: Any) -> None:
    """Read-only, with a time limit: MariaDB's max_statement_time (seconds) or MySQL's
    max_execution_time (milliseconds, which covers SELECTs: all a source runs)."""
    cursor = connection.cursor()
    cursor.execute("SET SESSION TRANSACTION READ ONLY")
    if "MariaDB" in connection.get_server_info():
        cursor.execute(f"SET SESSION max_statement_time = {SOURCE_QUERY_SECONDS:g}")
    else:
        cursor.execute(f"SET SESSION max_execution_time = {round(SOURCE_QUERY_SECONDS * 1000)}")
    cursor.close()


def _sqlite_deadline(connection: Any, _: Any) -> None:
    """Interrupt the file's queries SOURCE_QUERY_SECONDS after connecting (each read
    connects anew: NullPool). SQLite calls the handler every 10,000 instructions."""
    deadline = time.monotonic() + SOURCE_QUERY_SECONDS
    connection.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)


def _selectable(spec: SourceSpec) -> Any:
    columns = [sa.column(c) for c in (spec.timestamp_column, spec.value_column, spec.series_column, *spec.exogenous_columns) if c]
    if spec.table_name:
        schema, _, name = spec.table_name.rpartition(".")
        return sa.table(name, *columns, schema=schema or None)
    return sa.text(spec.query.strip().rstrip(";")).columns(*columns).subquery("source")  # type: ignore[union-attr]


@dataclass(frozen=True)
class SourceRow:
    timestamp: datetime
    value: float
    series_id: str | None


@dataclass(frozen=True)
class FutureRow:
    """A row ahead of the observations: its value is still missing, its exogenous
    columns hold what is planned or forecast elsewhere (a price, a temperature)."""

    timestamp: datetime
    series_id: str | None
    values: dict[str, float | None]


def read_rows(engine: Engine, spec: SourceSpec, after: datetime | None, limit: int) -> list[SourceRow]:
    """The newest `limit` rows after `after` (all of them when None), oldest first.
    Rows with a missing timestamp or value are skipped."""
    source = _selectable(spec)
    value = source.c[spec.value_column]
    fetched = _newest(engine, spec, source, [value], value.is_not(None), after, limit)
    return [SourceRow(timestamp, float(row[0]), series_id) for timestamp, series_id, row in fetched]


def read_future(engine: Engine, spec: SourceSpec, after: datetime | None, limit: int) -> list[FutureRow]:
    """The rows after `after` whose value is missing, with their exogenous columns: the
    newest `limit`, oldest first."""
    source = _selectable(spec)
    exogenous = [source.c[c] for c in spec.exogenous_columns]
    fetched = _newest(engine, spec, source, exogenous, source.c[spec.value_column].is_(None), after, limit)
    return [FutureRow(timestamp, series_id, {c: None if v is None else float(v) for c, v in zip(spec.exogenous_columns, row, strict=True)}) for timestamp, series_id, row in fetched]


def _newest(engine: Engine, spec: SourceSpec, source: Any, columns: list[Any], condition: Any, after: datetime | None, limit: int) -> list[tuple[datetime, str | None, Any]]:
    """(timestamp, series id, `columns`) of the newest `limit` rows of `source` after
    `after` meeting `condition`, oldest first; rows without a timestamp are skipped."""
    timestamp = source.c[spec.timestamp_column]
    series = [source.c[spec.series_column]] if spec.series_column else []
    statement = sa.select(timestamp, *series, *columns).where(timestamp.is_not(None), condition)
    # SQLite keeps times as text in whatever format the writer chose: compare them here.
    in_sql = after is not None and engine.dialect.name != "sqlite"
    if in_sql:
        statement = statement.where(timestamp > after)
    statement = statement.order_by(timestamp.desc()).limit(limit)
    started = time.monotonic()
    try:
        with engine.connect() as connection:
            fetched = connection.execute(statement).all()
    except sa.exc.DBAPIError as exc:
        # Each dialect words its stop differently; that the limit has passed says it all.
        if time.monotonic() - started >= SOURCE_QUERY_SECONDS:
            raise SourceTimeout(f"the source query took longer than {SOURCE_QUERY_SECONDS:g} s") from exc
        raise
    rows = [(_naive_utc(r[0]), (None if r[1] is None else str(r[1])) if series else None, r[1 + len(series) :]) for r in fetched]
    if after is not None and not in_sql:
        rows = [row for row in rows if row[0] > after]
    return sorted(rows, key=lambda row: row[0])


def _naive_utc(value: Any) -> datetime:
    """A source's time value (a datetime, or text where the driver gives text) as naive UTC."""
    return naive_utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


def probe_source(spec: SourceSpec) -> str | None:
    """None when the source answers with the named columns, else the reason it does not."""
    try:
        engine = open_engine(spec.url)
    except (OSError, ForbiddenHost) as exc:  # a name that does not resolve, or to a forbidden address
        return _reason(exc)
    try:
        read_rows(engine, spec, None, 1)
        if spec.exogenous_columns:
            read_future(engine, spec, None, 1)
        return None
    except Exception as exc:  # any driver or SQL failure is the answer, reported to the user
        return _reason(exc)
    finally:
        engine.dispose()


def _reason(exc: Exception) -> str:
    if isinstance(exc, SourceTimeout):
        return str(exc)
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return f"{type(original).__name__}: {first}"[:500]
