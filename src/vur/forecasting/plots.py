"""Charts of a trained model, drawn from what its training stored (results.json and
the forecast), never by refitting: forecast, residuals, feature importance.

matplotlib is imported on the first plot, and only its object API is used (no
pyplot), because requests render in parallel threads.
"""

from __future__ import annotations

import io
from typing import Any, Literal

from vur.forecasting.exceptions import PlotUnavailable

PlotKind = Literal["forecast", "residuals", "importance"]
PlotFormat = Literal["png", "svg"]
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
TOP_FEATURES = 20


def render(kind: PlotKind, results: dict[str, Any], forecast: dict[str, Any], series_id: str | None, fmt: PlotFormat) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    if kind == "importance":
        _importance(figure, results)
    else:
        series = series_id or _first_series(forecast, results)
        validation = [p for p in results.get("validation", []) if p["series_id"] == series]
        future = [p for p in forecast["predictions"] if p["series_id"] == series]
        if not validation and not future:
            raise PlotUnavailable(f"No series '{series}' in this model's results", {"series_id": "not a series of the model's dataset"})
        (_forecast if kind == "forecast" else _residuals)(figure, series, validation, future)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=100)
    return buffer.getvalue()


def _first_series(forecast: dict[str, Any], results: dict[str, Any]) -> str:
    points = forecast["predictions"] or results.get("validation", [])
    return points[0]["series_id"] if points else ""


def _times(points: list[dict[str, Any]]) -> list[Any]:
    from datetime import datetime

    return [datetime.fromisoformat(p["timestamp"]) for p in points]


def _forecast(figure: Any, series: str, validation: list[dict[str, Any]], future: list[dict[str, Any]]) -> None:
    axes = figure.add_subplot()
    if validation:
        times = _times(validation)
        axes.plot(times, [p["actual"] for p in validation], color="black", linewidth=1.2, label="actual (last validation window)")
        axes.plot(times, [p["forecast"] for p in validation], color="tab:orange", linestyle="--", label="validation forecast")
    if future:
        times = _times(future)
        axes.plot(times, [p["value"] for p in future], color="tab:blue", linewidth=1.5, label="forecast")
        for shade, level in zip((0.15, 0.3), sorted(future[0]["lower"], key=float, reverse=True), strict=False):
            axes.fill_between(times, [p["lower"][level] for p in future], [p["upper"][level] for p in future], color="tab:blue", alpha=shade, label=f"{level}% interval")
    axes.set_title(f"Forecast: {series}")
    axes.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()


def _residuals(figure: Any, series: str, validation: list[dict[str, Any]], _future: list[dict[str, Any]]) -> None:
    if not validation:
        raise PlotUnavailable("This model kept no validation window to draw residuals from", {"kind": "residuals"})
    over_time, spread = figure.subplots(1, 2, width_ratios=(2, 1))
    residuals = [p["residual"] for p in validation]
    over_time.axhline(0, color="grey", linewidth=0.8)
    over_time.plot(_times(validation), residuals, marker=".", linestyle="-", color="tab:red")
    over_time.set_title(f"Residuals (actual - forecast): {series}")
    spread.hist(residuals, bins=min(30, max(5, len(residuals) // 3)), color="tab:red", alpha=0.7)
    spread.set_title("Distribution")
    figure.autofmt_xdate()


def _importance(figure: Any, results: dict[str, Any]) -> None:
    importance = (results.get("details") or {}).get("feature_importance")
    if not importance:
        raise PlotUnavailable("This model has no feature importance", {"kind": "only the lag-feature regressors (lightgbm, xgboost, random_forest, linear) report it"})
    top = list(importance.items())[:TOP_FEATURES][::-1]
    axes = figure.add_subplot()
    axes.barh([name for name, _ in top], [share for _, share in top], color="tab:green")
    axes.set_xlabel("share of importance")
    axes.set_title("Feature importance")
