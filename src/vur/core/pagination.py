"""`limit`/`offset` query parameters and the `X-Total-Count` header every list answers with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Response

from vur.core.db import MAX_DB_INT


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT, description="Items to skip")] = 0,
) -> Page:
    return Page(limit, offset)


PageParams = Annotated[Page, Depends(page_params)]


def set_total(response: Response, total: int) -> None:
    response.headers["X-Total-Count"] = str(total)
