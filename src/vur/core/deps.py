"""Request-scoped dependencies shared by every domain router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from vur.core.db import Database
from vur.core.storage import ArtifactStore
from vur.settings import Settings

# Dependencies that do no I/O are coroutines: FastAPI runs a plain function dependency
# in its thread pool, and each such hop costs more than the work itself.


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_database_dep(request: Request) -> Database:
    return request.app.state.database


async def get_store(request: Request) -> ArtifactStore:
    return request.app.state.store


# How long a request waits for this process's writes deferred before it came (a forecast's
# record) before it reads anyway: they take milliseconds unless the database is stuck.
DEFERRED_WAIT_SECONDS = 10.0


def get_session(request: Request) -> Iterator[Session]:
    # One request is one transaction: commit when the route returns, roll back if it raises.
    # It first sees the records of answers sent before it (`vur.core.deferred`).
    database = request.app.state.database
    database.deferred.wait(DEFERRED_WAIT_SECONDS)
    with database.session() as session:
        yield session


# scope="function": commit before the response is sent, so a 2xx means the write landed.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
Store = Annotated[ArtifactStore, Depends(get_store)]
AppDatabase = Annotated[Database, Depends(get_database_dep)]
