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
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

POINT = "mean"
# Points of each series' history kept with the model: the longest lag, season or
# network input any catalogue algorithm reads, with room to spare.
HISTORY_KEPT = 2000


def original_units(config: dict[str, Any]) -> Callable[[Any], Any]:
    """A function that brings a frame's target, forecast and bounds back to the units
    the data was uploaded in, undoing the normalizations preprocessing applied."""
    undo = config.get("target_restoration") or []

    def restore(frame: Any) -> Any:
        if not undo:
            return frame
        frame = frame.copy()
        columns = [c for c in frame.columns if c in ("y", POINT) or c.startswith(("lo-", "hi-"))]
        for step in undo:
            frame[columns] = frame[columns] * step["scale"] + step["center"]
        return frame

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
        self.history = history.groupby("unique_id", sort=False).tail(HISTORY_KEPT).reset_index(drop=True)
        self.freq = freq
        self.horizon = int(self.baseline.groupby("unique_id").size().max())
        self.levels = sorted(int(c[3:]) for c in self.baseline.columns if c.startswith("lo-"))

    @property
    def series_ids(self) -> list[str]:
        return [str(uid) for uid in self.baseline["unique_id"].unique()]

    def predict(self, horizon: int, levels: list[int], observations: pd.DataFrame | None = None, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """unique_id, ds, mean, lo-L and hi-L for `levels` (a subset of `self.levels`),
        `horizon` steps (at most `self.horizon`) after each series' latest point.
        `future` (unique_id, ds and the exogenous columns) is read only by a model that
        has `exogenous` columns."""
        bounds = [f"{side}-{level}" for level in levels for side in ("lo", "hi")]
        if observations is None or observations.empty:
            frame = self.baseline[self.baseline.groupby("unique_id").cumcount() < horizon]
            return frame[["unique_id", "ds", POINT, *bounds]].reset_index(drop=True)
        history = self._extended(observations)
        points = self._points(history, horizon).reset_index(drop=True)
        return self._with_intervals(points, levels)

    def _extended(self, observations: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        if self.per_series and (unseen := set(observations["unique_id"]) - set(self.history["unique_id"])):
            raise UnknownSeriesError(f"the model was not fitted on series {sorted(unseen)[:5]}")
        wanted = self.history[self.history["unique_id"].isin(observations["unique_id"].unique())]
        merged = pd.concat([wanted, observations[["unique_id", "ds", "y"]]], ignore_index=True)
        merged = merged.drop_duplicates(["unique_id", "ds"], keep="last").sort_values(["unique_id", "ds"], kind="stable")
        return merged.groupby("unique_id", sort=False).tail(HISTORY_KEPT).reset_index(drop=True)

    def _with_intervals(self, points: pd.DataFrame, levels: list[int]) -> pd.DataFrame:
        """Each bound at the baseline's distance from its point, step by step; a series
        the baseline lacks takes the median distance over the series that have it."""
        if not levels:
            return points
        base = self.baseline.assign(step=self.baseline.groupby("unique_id").cumcount())
        points = points.assign(step=points.groupby("unique_id").cumcount())
        columns = [f"{side}-{level}" for level in levels for side in ("lo", "hi")]
        offsets = base[["unique_id", "step"]].assign(**{c: base[c] - base[POINT] for c in columns})
        typical = offsets.groupby("step")[columns].median()
        merged = points.merge(offsets, on=["unique_id", "step"], how="left")
        fallback = typical.reindex(merged["step"]).reset_index(drop=True)
        for column in columns:
            merged[column] = merged[POINT] + merged[column].fillna(fallback[column])
        return merged.drop(columns="step")

    def _points(self, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        raise NotImplementedError

    def _future(self, last: Any, horizon: int) -> Any:
        return _dates_after(last, horizon, self.freq)


class StatisticalForecaster(Forecaster):
    """statsforecast: each series' fitted model applied to its extended history (the
    orders and coefficients stay; models without `forward` are refitted on it)."""

    def __init__(self, fitted: Any, baseline: pd.DataFrame, history: pd.DataFrame, freq: str) -> None:
        super().__init__(baseline, history, freq)
        self.models = {str(uid): fitted.fitted_[i, 0] for i, uid in enumerate(fitted.uids)}

    def _points(self, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        parts = []
        for uid, part in history.groupby("unique_id", sort=False):
            model = self.models[str(uid)]
            y = part["y"].to_numpy(np.float64)
            step = model.forward if "forward" in type(model).__dict__ else model.forecast
            mean = step(y=y, h=horizon)["mean"]
            parts.append(pd.DataFrame({"unique_id": uid, "ds": self._future(part["ds"].iloc[-1], horizon), POINT: mean}))
        return pd.concat(parts, ignore_index=True)


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

    def predict(self, horizon: int, levels: list[int], observations: pd.DataFrame | None = None, future: pd.DataFrame | None = None) -> pd.DataFrame:
        if not self.exogenous:
            return super().predict(horizon, levels, observations)
        if future is None or future.empty:
            raise InvalidFutureValues(f"this model forecasts from future values of {self.exogenous}: give them for each step to forecast")
        history = self._extended(observations) if observations is not None and not observations.empty else self.history
        history = history[history["unique_id"].isin(future["unique_id"].unique())]
        if history.empty:
            raise InvalidFutureValues(f"the model has no history of the series the future values are for ({sorted(map(str, future['unique_id'].unique()))[:5]}); give their observations too")
        values = self._future_values(history, horizon, future)
        points = self.fitted.predict(horizon, new_df=history, X_df=values)[["unique_id", "ds", POINT]]
        return self._with_intervals(points.reset_index(drop=True), levels)

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

    def _points(self, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        return self.fitted.predict(horizon, new_df=history)[["unique_id", "ds", POINT]]


class ProphetForecaster(Forecaster):
    """Prophet's forecast is a function of time: it moves to the dates after the
    extended history; the observations themselves do not change it."""

    def __init__(self, models: dict[str, Any], baseline: pd.DataFrame, history: pd.DataFrame, freq: str) -> None:
        super().__init__(baseline, history, freq)
        self.models = models

    def _points(self, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        import pandas as pd

        parts = []
        for uid, part in history.groupby("unique_id", sort=False):
            future = pd.DataFrame({"ds": self._future(part["ds"].iloc[-1], horizon)})
            parts.append(pd.DataFrame({"unique_id": uid, "ds": future["ds"], POINT: self.models[str(uid)].predict(future)["yhat"].to_numpy()}))
        return pd.concat(parts, ignore_index=True)


class NetworkForecaster(Forecaster):
    """A Keras network reads the latest `input_size` values of each series, standardised
    with the series' training mean and deviation (an unseen series with its own)."""

    per_series = False

    def __init__(self, network: Any, input_size: int, scalers: dict[str, tuple[float, float]], baseline: pd.DataFrame, history: pd.DataFrame, freq: str) -> None:
        super().__init__(baseline, history, freq)
        self.network, self.input_size, self.scalers = network, input_size, scalers

    def _points(self, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        from vur.forecasting.networks import forecast_windows

        windows, scales, lasts, uids = [], [], [], []
        for uid, part in history.groupby("unique_id", sort=False):
            values = part["y"].to_numpy(np.float64)
            if len(values) < self.input_size:
                raise ValueError(f"series {uid!r} needs at least {self.input_size} points for this network, it has {len(values)}")
            mean, std = self.scalers.get(str(uid)) or (float(values.mean()), float(values.std()) or 1.0)
            windows.append((values[-self.input_size :] - mean) / std)
            scales.append((mean, std))
            lasts.append(part["ds"].iloc[-1])
            uids.append(uid)
        standardised = forecast_windows(self.network, np.stack(windows).astype(np.float32), horizon)
        parts = [
            pd.DataFrame({"unique_id": uid, "ds": self._future(last, horizon), POINT: row.astype(np.float64) * std + mean})
            for uid, last, row, (mean, std) in zip(uids, lasts, standardised, scales, strict=True)
        ]
        return pd.concat(parts, ignore_index=True)

    def __getstate__(self) -> dict[str, Any]:
        from vur.forecasting.networks import save_network

        state = dict(self.__dict__)
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
        self.__dict__.update(state)


class EnsembleForecaster(Forecaster):
    """auto: per series, the mean of the candidates its backtest chose; an unseen series
    takes the candidates chosen most often."""

    def __init__(self, candidates: dict[str, Forecaster], chosen: dict[str, list[str]], baseline: pd.DataFrame, history: pd.DataFrame, freq: str) -> None:
        super().__init__(baseline, history, freq)
        self.candidates, self.chosen = candidates, chosen
        self.per_series = any(c.per_series for c in candidates.values())

    def _points(self, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        import pandas as pd

        counts = pd.Series([name for names in self.chosen.values() for name in names]).value_counts()
        usual = list(counts.index[: max(1, max(len(v) for v in self.chosen.values()))])
        frames = [candidate._points(history, horizon).assign(candidate=name) for name, candidate in self.candidates.items()]
        stacked = pd.concat(frames, ignore_index=True)
        keep = [name in self.chosen.get(str(uid), usual) for uid, name in zip(stacked["unique_id"], stacked["candidate"], strict=True)]
        return stacked[keep].groupby(["unique_id", "ds"], as_index=False, sort=False)[POINT].mean()


def held_future(history: pd.DataFrame, columns: list[str], horizon: int, freq: str) -> pd.DataFrame:
    """Each series' next `horizon` timestamps with the exogenous `columns` held at their
    latest values: for where a forecast's shape matters, not its points (conformal
    interval widths do not depend on the point; the time a prediction takes)."""
    latest = history.groupby("unique_id", sort=False)[columns].last().reset_index()
    return _steps_ahead(history, horizon, freq).merge(latest, on="unique_id")


def _steps_ahead(history: pd.DataFrame, horizon: int, freq: str) -> pd.DataFrame:
    """unique_id, ds of the `horizon` steps after each series' latest point."""
    import pandas as pd

    latest = history.groupby("unique_id", sort=False)["ds"].last()
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": _dates_after(last, horizon, freq)}) for uid, last in latest.items()], ignore_index=True)


def _dates_after(last: Any, horizon: int, freq: str) -> Any:
    import pandas as pd

    offset = pd.tseries.frequencies.to_offset(freq)
    return pd.date_range(last + offset, periods=horizon, freq=offset)
