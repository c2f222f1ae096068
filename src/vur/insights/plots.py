"""A ranking as a bar chart, for people who would rather look than read JSON. Drawn
from the stored ranking with matplotlib's object API (no pyplot: requests render in
parallel threads)."""

from __future__ import annotations

import io
from typing import Any

from vur.forecasting.plots import PlotFormat

COLOURS = {"positive": "tab:green", "negative": "tab:red", "mixed": "tab:grey"}


def ranking_chart(items: list[dict[str, Any]], title: str, fmt: PlotFormat, top: int) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    shown = items[:top][::-1]
    figure = Figure(figsize=(9, max(2.5, 0.35 * len(shown) + 1.2)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.barh(
        [item["variable"] for item in shown],
        [item["importance"] * 100 for item in shown],
        xerr=[item["importance_std"] * 100 for item in shown],
        color=[COLOURS[item["direction"]] for item in shown],
        capsize=2,
    )
    axes.set_xlabel("importance (% of the total)")
    axes.set_title(title)
    axes.legend(handles=[Patch(color=c, label=f"{d}: raising it {'raises' if d == 'positive' else 'lowers' if d == 'negative' else 'moves'} the target") for d, c in COLOURS.items()], loc="lower right", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=100)
    return buffer.getvalue()
