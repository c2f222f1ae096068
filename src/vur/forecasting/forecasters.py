"""Fitted forecasters: what a training job keeps so that the model forecasts again later,
in the API process, without being trained again.

A forecaster holds the library's fitted object, the tail of the history it was fitted
on, and its `baseline`: the forecast it made from the end of that history, with every
interval level. Predicting from the same history answers a slice of the baseline (the
fitted state has not changed, so the library would compute exactly that again).
Predicting from newer observations runs the fitted model on the extended history; the
intervals then keep the baseline's width at each step of each series.

Everything works in the units the model was trained in; the prediction service converts
from and to the units of the upload. Forecasters are pickled into the model version's
folder. Only files this installation wrote (or a bundle signed with its secret) are ever
unpickled.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    # Rows given as a frame, or as its columns' arrays (Forecaster.forecast_columns).
    Columns = pd.DataFrame | Mapping[str, Any]

POINT = "mean"
# Points of each series' history kept with the model: the longest lag, season or
# network input any catalogue algorithm reads, with room to spare.
HISTORY_KEPT = 2000


def original_units(config: dict[str, Any]) -> Callable[[Any], Any]:
    """A function that brings a frame's target, forecast and bounds back to the units
    the data was uploaded in, undoing the normalizations preprocessing applied (or those
    of a dict of its columns' arrays, as `Forecaster.forecast_columns` answers)."""
    undo = config.get("target_restoration") or []

    def restore(frame: Any) -> Any:
        if not undo:
            return frame
        # A frame and a dict both iterate over their column names and assign columns.
        restored = dict(frame) if isinstance(frame, dict) else frame.copy()
        for name in [c for c in restored if c in ("y", POINT) or c.startswith(("lo-", "hi-"))]:
            for step in undo:
                restored[name] = restored[name] * step["scale"] + step["center"]
        return restored

    return restore


def training_units(undo: list[dict[str, float]]) -> Callable[[Any], Any]:
    """The inverse of `original_units` for given values (observed targets, future
    exogenous values): from the units of the upload to those the model was trained in,
    redoing the normalizations `undo` lists (a column's restoration, newest first)."""

    def convert(values: Any) -> Any:
        for step in reversed(undo):
            values = (values - step["center"]) / step["scale"]
        return values

    return convert


class UnknownSeriesError(ValueError):
    """Observations for a series this model holds no fitted state for."""


class MissingStep(ValueError):
    """Observations that skip a step of the model's frequency: `missing` (series
    `series_id`) is the first one absent. A source streaming rows may yet deliver it."""

    def __init__(self, message: str, series_id: str, missing: str) -> None:
        super().__init__(message)
        self.series_id, self.missing = series_id, missing


class InvalidFutureValues(ValueError):
    """A model fitted with exogenous columns was not given their values (only theirs)
    at every step it is asked to forecast."""


class Forecaster:
    """Base: the baseline, the kept history and the interval arithmetic. Subclasses
    forecast points from a history (`_points`)."""

    per_series = True  # a fitted model per series: unseen series cannot be forecast
    # Columns whose future values a forecast needs (a regressor fitted with them).
    exogenous: list[str] = []

    def __init__(self, baseline: pd.DataFrame, history: pd.DataFrame, freq: str) -> None:
        self.baseline = baseline.reset_index(drop=True)
        self.history = _latest_rows(history, HISTORY_KEPT)
        self.freq = freq
        self.horizon = int(self.baseline.groupby("unique_id").size().max())
        self.levels = sorted(int(c[3:]) for c in self.baseline.columns if c.startswith("lo-"))

    def __getstate__(self) -> dict[str, Any]:
        """The history's ids pickled as each series' id and length: one reference a row
        costs pickle more than the rest of the history (M4 Hourly: 353,000 of them).
        Its columns' arrays (`_history_columns`) are the history again: not pickled."""
        import pandas as pd

        runs = SeriesRuns.of(self.history)
        history = pd.DataFrame({name: column for name, column in self.history.items() if name != "unique_id"}, copy=False)
        state = {name: value for name, value in self.__dict__.items() if name != "_columns"}
        return {**state, "history": history, "history_series": (runs.ids, runs.lengths)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import numpy as np
        import pandas as pd

        if "history_series" in state:  # pickled before, the history came whole
            ids, lengths = state.pop("history_series")
            state["history"].insert(0, "unique_id", np.repeat(ids, lengths))
        for name in ("history", "baseline"):
            # Fitted on zoned times before training made them naive UTC: new observations (naive UTC) could not extend them.
            if isinstance(state[name]["ds"].dtype, pd.DatetimeTZDtype):
                state[name] = state[name].assign(ds=state[name]["ds"].dt.tz_convert(None))
        self.__dict__.update(state)

    @property
    def series_ids(self) -> list[str]:
        return [str(uid) for uid in self.baseline["unique_id"].unique()]

    def predict(self, horizon: int, levels: list[int], observations: pd.DataFrame | None = None, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """unique_id, ds, mean, lo-L and hi-L for `levels` (a subset of `self.levels`),
        `horizon` steps (at most `self.horizon`) after each series' latest point.
        `future` (unique_id, ds and the exogenous columns) is read only by a model that
        has `exogenous` columns."""
        import pandas as pd

        if self.exogenous or _has_rows(observations):
            return pd.DataFrame(self.forecast_columns(horizon, levels, observations, future))
        bounds = [f"{side}-{level}" for level in levels for side in ("lo", "hi")]
        frame = self.baseline[self.baseline.groupby("unique_id").cumcount() < horizon]
        return frame[["unique_id", "ds", POINT, *bounds]].reset_index(drop=True)

    def forecast_columns(self, horizon: int, levels: list[int], observations: Columns | None, future: pd.DataFrame | None = None) -> dict[str, Any]:
        """What `predict` answers from new inputs (observations, or the future values a
        model with `exogenous` columns reads), as its columns' arrays; `observations`
        (unique_id, ds, y) may be given as a frame or as its columns' arrays. The
        prediction service reads the columns straight into its answer: building a frame of
        them and reading it back column by column would cost a request about a millisecond."""
        return self._with_intervals(self._points(self._extended(observations), horizon), levels)

    def check(self, horizon: int, observations: Columns | None = None, future: pd.DataFrame | None = None) -> None:
        """What `predict` would refuse these inputs for (the errors it raises), found
        without forecasting: a batch's requests are checked so before its job runs."""
        if _has_rows(observations):
            self._extended(observations)

    def _extended(self, observations: Columns) -> History:
        """The kept history of the observed series with the observations added (one
        replaces a kept point at its timestamp), sorted, each series' latest HISTORY_KEPT.
        Worked on the columns' arrays, and left as arrays: a request pays pandas' fixed
        cost per operation once (building the one frame it answers), not a dozen times.
        Every numpy call counts too: a request runs these right after a library call has
        left the processor's caches cold, where each costs several microseconds."""
        import numpy as np

        spans, history = self._history_spans(), self._history_columns()
        # The series are those the observations name, sorted (as statsforecast sorts them),
        # coded by a dict: for a request's few ids, a fraction of pandas' factorize.
        given_ids = np.asarray(observations["unique_id"])
        uids = np.asarray(sorted(set(given_ids.tolist())), dtype=given_ids.dtype)
        code_of = {uid: code for code, uid in enumerate(uids.tolist())}
        if self.per_series and (unseen := [uid for uid in code_of if uid not in spans]):
            raise UnknownSeriesError(f"the model was not fitted on series {sorted(unseen)[:5]}")
        kept = [(code, *spans[uid]) for uid, code in code_of.items() if uid in spans]
        given = len(given_ids)
        kept_codes = np.repeat(np.array([code for code, _, _ in kept], dtype=np.int64), [stop - start for _, start, stop in kept])
        series = np.concatenate([kept_codes, np.fromiter(map(code_of.__getitem__, given_ids.tolist()), np.int64, given)])
        columns = {}
        for name, values in history.items():
            if name != "unique_id":  # made again from the series' codes, once sorted
                added = np.asarray(observations[name]) if name in ("ds", "y") else np.full(given, np.nan)
                columns[name] = np.concatenate([*(values[start:stop] for _, start, stop in kept), added.astype(values.dtype) if name == "ds" else added])
        # Stable: at a repeated timestamp the newest row comes last, and is the one kept.
        stamps = columns["ds"].view(np.int64)
        order = np.lexsort((stamps, series))
        ordered_series, ordered_stamps = series[order], stamps[order]
        latest = order[np.append((ordered_series[1:] != ordered_series[:-1]) | (ordered_stamps[1:] != ordered_stamps[:-1]), True)]
        # `latest` runs series by series (by code, each code at least once), each by time.
        ordered = series[latest]
        lengths = np.bincount(ordered, minlength=len(uids))
        if lengths.max() > HISTORY_KEPT:
            latest = latest[_positions_from_end(ordered) < HISTORY_KEPT]
            ordered, lengths = series[latest], np.minimum(lengths, HISTORY_KEPT)
        _check_steps(ordered, columns["ds"][latest], latest >= len(series) - given, uids, self.freq)
        runs = SeriesRuns(uids, np.cumsum(lengths) - lengths, lengths)
        return History({"unique_id": np.repeat(uids, lengths), **{name: values[latest] for name, values in columns.items()}}, runs)

    def _history_columns(self) -> dict[str, Any]:
        """The kept history's columns as arrays, taken out of the frame once per model."""
        if "_columns" not in self.__dict__:
            self.__dict__["_columns"] = {name: self.history[name].to_numpy() for name in self.history.columns}
        return self.__dict__["_columns"]

    def _history_spans(self) -> dict[Any, tuple[int, int]]:
        """Each kept series' rows in the history (start, stop), worked out once per model:
        finding them by comparing every id would cost a request a scan of the history."""
        if "_spans" not in self.__dict__:
            runs = SeriesRuns.of(self.history)
            self.__dict__["_spans"] = {uid: (int(start), int(start + length)) for uid, start, length in zip(runs.ids, runs.starts, runs.lengths, strict=True)}
        return self.__dict__["_spans"]

    def _with_intervals(self, points: Points, levels: list[int]) -> dict[str, Any]:
        """The points' columns with a bound per level and side, each at the baseline's
        distance from its point, step by step; a series the baseline lacks (or a step it
        has no bound at) takes the median distance over the series that have it."""
        import numpy as np

        answer = {"unique_id": points.unique_id, "ds": points.ds, POINT: points.mean}
        if levels:
            columns = [f"{side}-{level}" for level in levels for side in ("lo", "hi")]
            row_of, by_series, typical = self._interval_offsets(tuple(columns))
            # Each point's series coded by a dict, in the order they come: for a request's
            # few series, a fraction of pandas' factorize.
            code_of: dict[Any, int] = {}
            ids = points.unique_id.tolist()
            codes = np.fromiter((code_of.setdefault(uid, len(code_of)) for uid in ids), np.int64, len(ids))
            steps = _positions_from_start(codes)
            rows = np.array([row_of.get(uid, -1) for uid in code_of], dtype=np.int64)[codes]
            known = by_series[np.maximum(rows, 0), steps]
            offsets = np.where((rows >= 0)[:, None] & ~np.isnan(known), known, typical[steps])
            answer.update(zip(columns, (points.mean[:, None] + offsets).T, strict=True))
        return answer

    def _interval_offsets(self, columns: tuple[str, ...]) -> tuple[dict[Any, int], Any, Any]:
        """Each baseline series' row; each one's distance from point to bound per step and
        bound column (NaN where it has none); their median over series per step. Worked
        out once per model and columns: requests with new data read them every time."""
        import warnings

        import numpy as np
        import pandas as pd

        cache = self.__dict__.setdefault("_offsets_by_columns", {})
        if columns not in cache:
            codes, uids = pd.factorize(self.baseline["unique_id"])
            by_series = np.full((len(uids), self.horizon, len(columns)), np.nan)
            distances = self.baseline[list(columns)].to_numpy(np.float64) - self.baseline[POINT].to_numpy(np.float64)[:, None]
            by_series[codes, _positions_from_start(codes)] = distances
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a step no series has a bound at stays NaN
                cache[columns] = {uid: row for row, uid in enumerate(uids)}, by_series, np.nanmedian(by_series, axis=0)
        return cache[columns]

    def _points(self, history: History, horizon: int) -> Points:
        raise NotImplementedError


class StatisticalForecaster(Forecaster):
    """statsforecast: each series' fitted model applied to its extended history (the
    orders and coefficients stay; models without `forward` are refitted on it)."""

    def __init__(self, fitted: Any, baseline: pd.DataFrame, history: pd.DataFrame, freq: str) -> None:
        super().__init__(baseline, history, freq)
        self.models = {str(uid): fitted.fitted_[i, 0] for i, uid in enumerate(fitted.uids)}

    def _points(self, history: History, horizon: int) -> Points:
        import numpy as np

        means = [self._step(uid)(y=y, h=horizon)["mean"] for uid, y in zip(history.runs.ids, history.values(), strict=True)]
        return Points.after(history.runs.ids, history.ends(), horizon, self.freq, np.concatenate(means))

    def _step(self, uid: Any) -> Callable[..., dict[str, Any]]:
        # statsforecast's base class has no `forward`: a model has one (perhaps inherited,
        # as Theta from AutoTheta) only when it can be applied without refitting.
        model = self.models[str(uid)]
        return model.forward if hasattr(model, "forward") else model.forecast


class RegressionForecaster(Forecaster):
    """mlforecast: the global regressor forecasts recursively from the extended history;
    series it never saw are fine when their history covers the lags.

    Fitted with exogenous columns, it forecasts only from their given future values: the
    series `future` covers, every step of them. Its baseline's points were made from
    held values and are never served; only their interval widths are used."""

    per_series = False

    def __init__(self, fitted: Any, baseline: pd.DataFrame, history: pd.DataFrame, freq: str, exogenous: list[str]) -> None:
        super().__init__(baseline, history, freq)
        self.fitted, self.exogenous = fitted, exogenous

    def forecast_columns(self, horizon: int, levels: list[int], observations: Columns | None, future: pd.DataFrame | None = None) -> dict[str, Any]:
        if not self.exogenous:
            return super().forecast_columns(horizon, levels, observations)
        history, values = self._inputs(horizon, observations, future)
        return self._with_intervals(Points.of(self.fitted.predict(horizon, new_df=history, X_df=values)), levels)

    def check(self, horizon: int, observations: Columns | None = None, future: pd.DataFrame | None = None) -> None:
        if self.exogenous:
            self._inputs(horizon, observations, future)
        elif _has_rows(observations):
            history = self._extended(observations)
            self._check_lengths(history.runs.ids, history.runs.lengths)

    def _check_lengths(self, ids: Any, lengths: Any) -> None:
        """The target is differenced before the regressor reads it: a series (one it never
        saw, given with a few observations) needs more points than the differences span."""
        from mlforecast.target_transforms import Differences

        needed = sum(sum(t.differences) for t in self.fitted.ts.target_transforms or [] if isinstance(t, Differences))
        if short := [str(uid) for uid, length in zip(ids, lengths, strict=True) if length < needed]:
            raise ValueError(f"series {sorted(short)[:5]} have fewer than the {needed} points the model differences its target over: give more of their history")

    def _inputs(self, horizon: int, observations: Columns | None, future: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The history to forecast from and the exogenous values of each step ahead."""
        if future is None or future.empty:
            raise InvalidFutureValues(f"this model forecasts from future values of {self.exogenous}: give them for each step to forecast")
        history = self._extended(observations).frame() if _has_rows(observations) else self.history
        history = history[history["unique_id"].isin(future["unique_id"].unique())]
        if history.empty:
            raise InvalidFutureValues(f"the model has no history of the series the future values are for ({sorted(map(str, future['unique_id'].unique()))[:5]}); give their observations too")
        runs = SeriesRuns.of(history)
        self._check_lengths(runs.ids, runs.lengths)
        return history, self._future_values(history, horizon, future)

    def _future_values(self, history: pd.DataFrame, horizon: int, future: pd.DataFrame) -> pd.DataFrame:
        """The exogenous values of each step ahead; a missing one is an error naming it."""
        if unknown := sorted(set(future.columns) - {"unique_id", "ds", *self.exogenous}):
            raise InvalidFutureValues(f"{unknown} are not exogenous columns of this model; it takes {self.exogenous}")
        given = future.drop_duplicates(["unique_id", "ds"], keep="last")
        steps = _steps_ahead(history, horizon, self.freq).merge(given, on=["unique_id", "ds"], how="left")
        for column in self.exogenous:
            missing = steps[steps[column].isna()] if column in steps.columns else steps
            if not missing.empty:
                first = missing.iloc[0]
                raise InvalidFutureValues(
                    f"no value of '{column}' for series {first['unique_id']!r} at {first['ds'].isoformat()} ({len(missing)} of {len(steps)} missing); "
                    f"the model needs {self.exogenous} at each of the {horizon} steps after each series' latest observation"
                )
        return steps[["unique_id", "ds", *self.exogenous]]

    def _points(self, history: History, horizon: int) -> Points:
        import numpy as np

        from vur.forecasting import recursion

        self._check_lengths(history.runs.ids, history.runs.lengths)
        targets = history.columns["y"]
        if self._replicated() and not np.isnan(targets).any():
            steps = Points.after(history.runs.ids, history.ends(), horizon, self.freq)
            return Points(steps.unique_id, steps.ds, recursion.forecast(self.fitted, targets, history.runs.lengths, steps.ds, horizon))
        return Points.of(self.fitted.predict(horizon, new_df=history.frame()))

    def _replicated(self) -> bool:
        """Whether `recursion.forecast` stands in for the library's predict, worked out
        once per model."""
        from vur.forecasting import recursion

        if "_is_replicated" not in self.__dict__:
            self.__dict__["_is_replicated"] = recursion.replicated(self.fitted)
        return self.__dict__["_is_replicated"]


class ProphetForecaster(Forecaster):
    """Prophet's forecast is a function of time: it moves to the dates after the
    extended history; the observations themselves do not change it."""

    def __init__(self, models: dict[str, Any], baseline: pd.DataFrame, history: pd.DataFrame, freq: str) -> None:
        super().__init__(baseline, history, freq)
        self.models = models

    def _points(self, history: History, horizon: int) -> Points:
        import numpy as np
        import pandas as pd

        steps = Points.after(history.runs.ids, history.ends(), horizon, self.freq)
        dates = steps.ds.reshape(-1, horizon)
        means = [self.models[str(uid)].predict(pd.DataFrame({"ds": ds}))["yhat"].to_numpy() for uid, ds in zip(history.runs.ids, dates, strict=True)]
        return Points(steps.unique_id, steps.ds, np.concatenate(means))


class NetworkForecaster(Forecaster):
    """A Keras network reads the latest `input_size` values of each series, standardised
    with the series' training mean and deviation (an unseen series with its own)."""

    per_series = False

    def __init__(self, network: Any, input_size: int, scalers: dict[str, tuple[float, float]], baseline: pd.DataFrame, history: pd.DataFrame, freq: str) -> None:
        super().__init__(baseline, history, freq)
        self.network, self.input_size, self.scalers = network, input_size, scalers

    def _points(self, history: History, horizon: int) -> Points:
        import numpy as np

        from vur.forecasting.networks import forecast_windows

        windows, scales = [], []
        for uid, values in zip(history.runs.ids, history.values(), strict=True):
            if len(values) < self.input_size:
                raise ValueError(f"series {uid!r} needs at least {self.input_size} points for this network, it has {len(values)}")
            mean, std = self.scalers.get(str(uid)) or (float(values.mean()), float(values.std()) or 1.0)
            windows.append((values[-self.input_size :] - mean) / std)
            scales.append((mean, std))
        standardised = forecast_windows(self.network, np.stack(windows).astype(np.float32), horizon)
        means, stds = np.array(scales).T
        points = standardised.astype(np.float64) * stds[:, None] + means[:, None]
        return Points.after(history.runs.ids, history.ends(), horizon, self.freq, points.ravel())

    def __getstate__(self) -> dict[str, Any]:
        from vur.forecasting.networks import save_network

        state = super().__getstate__()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "network.keras"
            save_network(self.network, path)
            state["network"] = path.read_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from vur.forecasting.networks import load_network

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "network.keras"
            path.write_bytes(state["network"])
            state["network"] = load_network(path)
        super().__setstate__(state)


class EnsembleForecaster(Forecaster):
    """auto: per series, the mean of the candidates its backtest chose; an unseen series
    takes the candidates chosen most often."""

    def __init__(self, candidates: dict[str, Forecaster], chosen: dict[str, list[str]], baseline: pd.DataFrame, history: pd.DataFrame, freq: str) -> None:
        super().__init__(baseline, history, freq)
        self.candidates, self.chosen = candidates, chosen
        self.per_series = any(c.per_series for c in candidates.values())

    def _points(self, history: History, horizon: int) -> Points:
        import pandas as pd

        counts = pd.Series([name for names in self.chosen.values() for name in names]).value_counts()
        usual = list(counts.index[: max(1, max(len(v) for v in self.chosen.values()))])
        frames = [candidate._points(history, horizon).frame().assign(candidate=name) for name, candidate in self.candidates.items()]
        stacked = pd.concat(frames, ignore_index=True)
        keep = [name in self.chosen.get(str(uid), usual) for uid, name in zip(stacked["unique_id"], stacked["candidate"], strict=True)]
        return Points.of(stacked[keep].groupby(["unique_id", "ds"], as_index=False, sort=False)[POINT].mean())


@dataclass(frozen=True)
class History:
    """A history in the statsforecast layout (each series' rows together, in time) held as
    column arrays, and its series: what a forecast from new observations reads."""

    columns: dict[str, Any]
    runs: SeriesRuns

    def frame(self) -> pd.DataFrame:
        """The columns as a frame, not copied: they are this history's own (`_extended`
        makes them for it), and a regressor reads the frame once."""
        import pandas as pd

        return pd.DataFrame(self.columns, copy=False)

    def values(self) -> list[Any]:
        """Each series' `y` as float64, series in their order."""
        import numpy as np

        return np.split(self.columns["y"].astype(np.float64, copy=False), self.runs.starts[1:])

    def ends(self) -> Any:
        """Each series' latest timestamp."""
        return self.columns["ds"][self.runs.starts + self.runs.lengths - 1]


@dataclass(frozen=True)
class Points:
    """Forecast points as arrays: each one's series id, timestamp and value."""

    unique_id: Any
    ds: Any
    mean: Any

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Points:
        import numpy as np

        return cls(frame["unique_id"].to_numpy(), frame["ds"].to_numpy(), frame[POINT].to_numpy(np.float64))

    @classmethod
    def after(cls, uids: Any, ends: Any, horizon: int, freq: str, mean: Any = None) -> Points:
        """The `horizon` steps after each series' end, series by series, with `mean`."""
        import numpy as np

        return cls(np.repeat(np.asarray(uids), horizon), _dates_after_each(ends, horizon, freq), mean)

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"unique_id": self.unique_id, "ds": self.ds, POINT: self.mean})


def held_future(history: pd.DataFrame, columns: list[str], horizon: int, freq: str) -> pd.DataFrame:
    """Each series' next `horizon` timestamps with the exogenous `columns` held at their
    latest values: for where a forecast's shape matters, not its points (conformal
    interval widths do not depend on the point; the time a prediction takes)."""
    latest = history.groupby("unique_id", sort=False)[columns].last().reset_index()
    return _steps_ahead(history, horizon, freq).merge(latest, on="unique_id")


def _steps_ahead(history: pd.DataFrame, horizon: int, freq: str) -> pd.DataFrame:
    """unique_id, ds of the `horizon` steps after each series' latest point, series in
    the order they first appear in `history`."""
    import pandas as pd

    latest = history.groupby("unique_id", sort=False)["ds"].last()
    steps = Points.after(latest.index, latest, horizon, freq)
    return pd.DataFrame({"unique_id": steps.unique_id, "ds": steps.ds})


def _has_rows(observations: Columns | None) -> bool:
    """Whether observations (a frame, or its columns' arrays) were given at all."""
    return observations is not None and len(observations["unique_id"]) > 0


def _check_steps(series: Any, stamps: Any, observed: Any, uids: Any, freq: str) -> None:
    """ValueError naming the first point that is not one step of `freq` after the point
    before it, from each series' earliest observation on: a fitted model reads every
    value as the step after the previous one, so a gap or a time off the grid would be
    forecast from silently. `series` (codes into `uids`) and `stamps` run series by
    series, in time; `observed` marks the rows that came with the request."""
    import numpy as np
    import pandas as pd

    if not observed.any():
        return
    first = np.full(len(uids), len(series))
    np.minimum.at(first, series[observed], np.flatnonzero(observed))
    rows = np.arange(1, len(series))
    checked = rows[(series[1:] == series[:-1]) & (rows >= first[series[1:]])]
    if not checked.size:
        return
    expected = _dates_after_each(stamps[checked - 1], 1, freq)
    if (wrong := np.flatnonzero(stamps[checked] != expected)).size:
        at, step = checked[wrong[0]], wrong[0]
        shown = [pd.Timestamp(t).isoformat() for t in (stamps[at], stamps[at - 1], expected[step])]
        message = (
            f"series {uids[series[at]]!r}: {shown[0]} follows {shown[1]}, where the model's frequency ({freq}) has {shown[2]} next; "
            "give observations that continue the series one step at a time, without gaps"
        )
        if stamps[at] > expected[step]:  # a step left out, not a time off the grid
            raise MissingStep(message, str(uids[series[at]]), shown[2])
        raise ValueError(message)


def _dates_after_each(ends: Any, horizon: int, freq: str) -> Any:
    """The `horizon` timestamps after each of `ends`, one end's after the other's."""
    import numpy as np
    import pandas as pd

    ends = np.asarray(ends, dtype="datetime64[ns]")
    offset = offset_of(freq)
    if isinstance(offset, pd.offsets.Tick):  # a fixed length (hours, days, minutes): plain arithmetic
        return (ends[:, None] + np.arange(1, horizon + 1) * np.timedelta64(offset.nanos, "ns")).ravel()
    # Calendar steps (months, business days): a date range per distinct end; series usually end together.
    codes, distinct = pd.factorize(ends)
    return np.stack([_dates_after(end, horizon, freq).to_numpy("datetime64[ns]") for end in distinct])[codes].ravel()


def _latest_rows(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """Each series' latest `count` rows of a frame in the statsforecast layout, on a fresh
    index (what groupby("unique_id").tail(count) selects, for a fraction of its cost).
    When every row is kept the columns are the frame's own, not copied: nothing writes to
    a fitted model's data."""
    import pandas as pd

    runs = SeriesRuns.of(frame)
    if runs.lengths.max(initial=0) > count:
        codes = runs.codes()
        frame = frame[runs.positions(codes) >= runs.lengths[codes] - count]
    return frame.set_axis(pd.RangeIndex(len(frame)), copy=False)


@dataclass(frozen=True)
class SeriesRuns:
    """The series of a frame in the statsforecast layout (each series' rows together),
    found where the id changes: a fraction of the cost of grouping, which hashes every id."""

    ids: Any  # each series' id, in the frame's order
    starts: Any  # the row where it starts
    lengths: Any  # its number of rows

    @classmethod
    def of(cls, frame: pd.DataFrame) -> SeriesRuns:
        import ctypes

        import numpy as np

        ids = frame["unique_id"].to_numpy()
        first = np.ones(len(ids), dtype=bool)
        if ids.dtype == object and len(ids) > 1:
            # The rows of a series usually share one string object (the training job's long
            # frame, pyarrow's conversion and unpickling make them so): ids are compared as
            # text only where the objects differ, in a tenth of the time of comparing all.
            ids = np.ascontiguousarray(ids)
            objects = np.ctypeslib.as_array((ctypes.c_ssize_t * len(ids)).from_address(ids.ctypes.data))
            changed = np.flatnonzero(objects[1:] != objects[:-1]) + 1
            first[1:] = False
            first[changed] = ids[changed] != ids[changed - 1]
        else:
            first[1:] = ids[1:] != ids[:-1]
        starts = np.flatnonzero(first)
        return cls(ids[starts], starts, np.diff(np.append(starts, len(ids))))

    def codes(self) -> Any:
        """Each row's series number (0 for the first series)."""
        import numpy as np

        return np.repeat(np.arange(len(self.starts)), self.lengths)

    def positions(self, codes: Any) -> Any:
        """Each row's position in its series (0 for its first row), from `codes()`."""
        import numpy as np

        return np.arange(len(codes)) - self.starts[codes]

    def first(self, counts: Any) -> SeriesRuns:
        """The runs of the frame that keeps the first `counts` rows of each series (at
        most all of them; a series left without rows is gone), without finding them again."""
        import numpy as np

        kept = np.clip(counts, 0, self.lengths)
        ids, lengths = self.ids[kept > 0], kept[kept > 0]
        return SeriesRuns(ids, np.cumsum(lengths) - lengths, lengths)


def _positions_from_start(series: Any) -> Any:
    """For each row, how many earlier rows belong to its series (0 for a series' first)."""
    import numpy as np

    return np.bincount(series)[series] - 1 - _positions_from_end(series)


def _positions_from_end(series: Any) -> Any:
    """For each row, how many later rows belong to its series (0 for a series' last)."""
    import numpy as np

    order = np.argsort(series, kind="stable")
    from_end = np.empty(len(series), dtype=np.int64)
    from_end[order] = np.cumsum(np.bincount(series))[series[order]] - np.arange(1, len(series) + 1)
    return from_end


def _dates_after(last: Any, horizon: int, freq: str) -> Any:
    import pandas as pd

    offset = offset_of(freq)
    return pd.date_range(pd.Timestamp(last) + offset, periods=horizon, freq=offset)


@cache
def offset_of(freq: str) -> Any:
    """The pandas offset of a frequency alias ("h", "MS"), parsed once per alias."""
    import pandas as pd

    return pd.tseries.frequencies.to_offset(freq)
