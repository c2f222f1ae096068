"""Scoring earlier predictions: observed values that arrive later (in a request's
observations or a stream's source) are the actuals of the forecasts made before them.
Each forecast point that meets its actual records it, once, and its prediction's error
sums grow; `/predictions/stats` and the monitoring pages read those sums.

A forecast scores in its own transaction, so that its answer (or a stream's run) finds
the earlier errors recorded. It scores a few pages of earlier predictions at most: when
more remain (a model asked for the same forecast thousands of times over the observed
span), this process's scorer thread goes on with them once the transaction commits.
A thread, not the request, because it would hold the forecast up; not every time,
because a thread working beside a forecast slows it more than the work it does (the
forecast's libraries hand the GIL back and forth, and wait for it each time).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Engine, Row, Select, Uuid, bindparam, select, text, update
from sqlalchemy.orm import Session

from vur.core.db import naive_utc, on_commit
from vur.predictions.models import UNSCORED, Prediction

log = logging.getLogger(__name__)

# An observed value: (series id, naive UTC timestamp in ISO format) -> value.
Actuals = dict[tuple[str, str], float]
# Where a scoring pass stopped: the (last_ts, id) of the last prediction it read.
Cursor = tuple[datetime, uuid.UUID]

# Earlier predictions read and written per round trip, and the pages a forecast scores itself.
PAGE = 200
INLINE_PAGES = 2


def score_earlier(
    session: Session, model_id: uuid.UUID, actuals: Actuals, longest: float | None, *, after: Cursor | None = None, pages: int | None = None
) -> Cursor | None:
    """Score the model's predictions whose forecast span the actuals reach and that still
    have points without an actual, latest span first, a page at a time from `after`; stop
    after `pages` pages and answer where to go on (None: all done). `longest` is the
    model's longest forecast span in seconds (None: unknown, no bound). Rows are locked as
    they are read (where the database can), so two processes that score the same
    prediction take turns instead of overwriting each other's points. Read and written as
    plain rows: the ORM's per-attribute tracking would cost more than the scoring."""
    if not actuals:
        return None
    moments = [datetime.fromisoformat(stamp) for _, stamp in actuals]
    span = {"model_id": model_id, "earliest": min(moments), "latest": max(moments)}
    bounded = longest is not None
    if bounded:  # a prediction the actuals reach begins by the latest of them, so ends by this
        span["reach"] = span["latest"] + timedelta(seconds=longest)
    read = 0
    while pages is None or read < pages:
        if after is None:
            page = session.execute(_candidates(PAGE, after=False, bounded=bounded), span).all()
        else:
            page = session.execute(_candidates(PAGE, after=True, bounded=bounded), {**span, "after_ts": after[0], "after_id": after[1]}).all()
        read += 1
        if scored := [row for row in (_scored(prediction, actuals) for prediction in page) if row is not None]:
            session.execute(update(Prediction), scored)
        if len(page) < PAGE:
            return None
        after = (page[-1].last_ts, page[-1].id)
    return after


@cache
def _candidates(page: int, after: bool, bounded: bool) -> Select[Any]:
    """A page of the predictions a span of actuals reaches that still have points without
    an actual (after a cursor, or from the latest), their ends no later than `reach` when
    `bounded`: the index is then read from there down, not from the latest forecast of
    all (those of times not yet observed are never scored by these actuals, and yet were
    each walked past). Built once, with bound parameters:
    SQLAlchemy then reuses its compiled SQL instead of working it out for every forecast.
    On the table's columns, not the ORM's attributes: plain rows are read, and a Core
    statement skips the ORM's execution steps (every request with observations runs it)."""
    table = Prediction.__table__.c
    query = (
        select(table.id, table.last_ts, table.outputs, table.scored_points, table.absolute_error_sum, table.squared_error_sum)
        .where(table.model_id == bindparam("model_id", type_=Uuid()), table.last_ts >= bindparam("earliest"), table.first_ts <= bindparam("latest"))
        .where(text(UNSCORED))
    )
    if bounded:
        query = query.where(table.last_ts <= bindparam("reach"))
    if after:
        last_ts, prediction_id = bindparam("after_ts"), bindparam("after_id")
        query = query.where((table.last_ts < last_ts) | ((table.last_ts == last_ts) & (table.id < prediction_id)))
    return query.order_by(table.last_ts.desc(), table.id.desc()).limit(page).with_for_update()


def _scored(prediction: Row[Any], actuals: Actuals) -> dict[str, Any] | None:
    """The prediction's row with the actuals its unscored points meet, or None."""
    prediction_id, _, stored, points, absolute, squared = prediction
    outputs, changed = [dict(p) for p in stored], False
    for point in outputs:
        if "actual" in point:
            continue
        value = actuals.get((point["series_id"], naive_utc(datetime.fromisoformat(point["timestamp"])).isoformat()))
        if value is None:
            continue
        point["actual"], changed = value, True
        error = value - point["value"]
        points, absolute, squared = points + 1, absolute + abs(error), squared + error * error
    if not changed:
        return None
    return {"id": prediction_id, "outputs": outputs, "scored_points": points, "absolute_error_sum": absolute, "squared_error_sum": squared}


class Scorer:
    """The process's scorer thread: it goes on with the passes forecasts left unfinished,
    one page per transaction. A pass still pending when the process dies is lost: those
    earlier predictions stay unscored for these values."""

    def __init__(self) -> None:
        self._pending: deque[tuple[Engine, uuid.UUID, Actuals, float | None, Cursor]] = deque()
        self._busy = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def go_on(self, engine: Engine, model_id: uuid.UUID, actuals: Actuals, longest: float | None, after: Cursor) -> None:
        with self._changed:
            self._pending.append((engine, model_id, actuals, longest, after))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vur-scorer", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Whether every pass handed over has ended within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending))
                engine, model_id, actuals, longest, after = self._pending.popleft()
                self._busy = True
            try:
                cursor: Cursor | None = after
                while cursor is not None:
                    with Session(engine) as session, session.begin():
                        cursor = score_earlier(session, model_id, actuals, longest, after=cursor, pages=1)
            except Exception:  # a failed pass must not stop the thread
                log.exception("scoring earlier predictions of model %s failed", model_id)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()


scorer = Scorer()


def score_from(session: Session, model_id: uuid.UUID, actuals: Actuals, longest: float | None) -> None:
    """Score what a forecast's transaction can, and leave the rest to the scorer thread
    once it commits."""
    if (rest := score_earlier(session, model_id, actuals, longest, pages=INLINE_PAGES)) is not None:
        engine = session.get_bind()
        on_commit(session, lambda: scorer.go_on(engine, model_id, actuals, longest, rest))
