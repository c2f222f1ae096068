"""Database engine, sessions and the declarative base every domain's tables derive from.

One request or one job is one transaction: `session_scope` commits on success and
rolls back on error; services only flush.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from sqlalchemy import DateTime, MetaData, TypeDecorator, Uuid, create_engine, event
from sqlalchemy.engine import Engine, Row
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql import Executable

from vur.core.deferred import DeferredWrites

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def naive_utc(moment: datetime) -> datetime:
    """A timestamp as forecasts hold them, naive in UTC: an aware one is converted."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class RecordMixin:
    """A UUID primary key and creation/modification times, UTC."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while a job writes; busy_timeout makes concurrent
    # writers (API, worker processes) wait instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _json_text(value: Any) -> str:
    """A JSON column's text, written by pydantic-core: json.dumps spends about a microsecond
    on each float's repr (a tenth of a millisecond for the points of a 24-step forecast)."""
    return pydantic_core.to_json(value).decode()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=_json_text)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, json_serializer=_json_text)


class Database:
    """The engine and session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.deferred = DeferredWrites(self.sessionmaker)

    def read(self, statement: Executable, params: dict[str, Any] | None = None) -> list[Row[Any]]:
        """The rows of one Core query, on a pooled connection and without an ORM session:
        for the schedulers' checks that each API process runs several times a second and
        that mostly find nothing, holding the GIL while a request's forecast waits for it:
        ~0.1 ms of Python so, ~0.4 ms through a session (warm; a few times that in a server)."""
        with self.engine.connect() as connection:
            return list(connection.execute(statement, params or {}).all())

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}


def get_database(url: str) -> Database:
    """One `Database` per URL and process (worker processes build their own)."""
    if url not in _databases:
        _databases[url] = Database(url)
    return _databases[url]


# The largest INTEGER every database VUR runs on stores (PostgreSQL's is 32-bit): a
# number a request compares with a column stays within it, or the driver fails.
MAX_DB_INT = 2**31 - 1

_ON_ROLLBACK = "vur_on_rollback"
_ON_COMMIT = "vur_on_commit"


def on_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Undo a side effect outside the database (a stored file) if the transaction fails."""
    session.info.setdefault(_ON_ROLLBACK, []).append(callback)


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Do something outside the database (delete files) only once the transaction landed."""
    session.info.setdefault(_ON_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_commit_callbacks(session: Session) -> None:
    session.info.pop(_ON_ROLLBACK, None)
    for callback in session.info.pop(_ON_COMMIT, []):
        callback()


@event.listens_for(Session, "after_rollback")
def _run_rollback_callbacks(session: Session) -> None:
    session.info.pop(_ON_COMMIT, None)
    for callback in session.info.pop(_ON_ROLLBACK, []):
        callback()
