"""The algorithm catalogue: what can be trained, and the parameters each accepts.

Each entry's `parameters` is the schema that configure/train validate against, and
`build` makes a model that follows statsforecast's contract (`fit` returns self,
`predict(h, level)` returns the mean and interval bounds). Model libraries are
imported inside `build`, so the API process never loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vur.forecasting.exceptions import InvalidHyperparameters, UnknownAlgorithm


@dataclass(frozen=True)
class Parameter:
    type: str  # "int" | "float" | "choice" | "bool"
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    description: str = ""

    def to_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.type, "default": self.default}
        for key in ("min", "max", "description"):
            if (value := getattr(self, key)) not in (None, ""):
                schema[key] = value
        if self.choices is not None:
            schema["choices"] = list(self.choices)
        return schema

    def check(self, name: str, value: Any) -> str | None:
        if self.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{name} must be an integer"
        if self.type == "float" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"{name} must be a number"
        if self.type == "bool" and not isinstance(value, bool):
            return f"{name} must be true or false"
        if self.choices is not None and value not in self.choices:
            return f"{name} must be one of {list(self.choices)}"
        if self.min is not None and value < self.min:
            return f"{name} must be at least {self.min}"
        if self.max is not None and value > self.max:
            return f"{name} must be at most {self.max}"
        return None


@dataclass(frozen=True)
class Algorithm:
    id: str
    name: str
    family: str  # "classical" | "machine_learning" | "deep_learning"
    description: str
    build: Callable[[dict[str, Any]], Any]
    parameters: dict[str, Parameter] = field(default_factory=dict)
    # Rules that involve several parameters: returns {parameter: problem}.
    check: Callable[[dict[str, Any]], dict[str, str]] | None = None

    def to_schema(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "parameters": {name: p.to_schema() for name, p in self.parameters.items()},
        }

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in; unknown or out-of-range values are a 422 naming each."""
        problems = {name: "unknown parameter" for name in given if name not in self.parameters}
        for name, parameter in self.parameters.items():
            if name in given and (problem := parameter.check(name, given[name])):
                problems[name] = problem
        resolved = {name: given.get(name, p.default) for name, p in self.parameters.items()}
        if not problems and self.check is not None:
            problems = self.check(resolved)
        if problems:
            raise InvalidHyperparameters(f"Invalid hyperparameters for {self.id}", problems)
        return resolved


def _naive(_: dict[str, Any]) -> Any:
    from statsforecast.models import Naive

    return Naive()


def _seasonal_naive(params: dict[str, Any]) -> Any:
    from statsforecast.models import SeasonalNaive

    return SeasonalNaive(season_length=params["season_length"])


def _historic_average(_: dict[str, Any]) -> Any:
    from statsforecast.models import HistoricAverage

    return HistoricAverage()


def _arima(params: dict[str, Any]) -> Any:
    from statsforecast.models import ARIMA

    return ARIMA(
        order=(params["p"], params["d"], params["q"]),
        season_length=params.get("season_length", 1),
        seasonal_order=(params.get("P", 0), params.get("D", 0), params.get("Q", 0)),
        include_drift=params["include_drift"],
    )


def _auto_arima(params: dict[str, Any]) -> Any:
    from statsforecast.models import AutoARIMA

    return AutoARIMA(season_length=params["season_length"], max_p=params["max_p"], max_q=params["max_q"])


def _ets(params: dict[str, Any]) -> Any:
    from statsforecast.models import AutoETS

    # A fully specified model string makes AutoETS fit exactly that ETS model.
    model = params["error"] + params["trend"] + params["seasonality"]
    return AutoETS(season_length=params["season_length"], model=model, damped=params["damped"])


def _auto_ets(params: dict[str, Any]) -> Any:
    from statsforecast.models import AutoETS

    return AutoETS(season_length=params["season_length"])


def _theta(params: dict[str, Any]) -> Any:
    from statsforecast.models import Theta

    return Theta(season_length=params["season_length"], decomposition_type=params["decomposition"])


def _auto_theta(params: dict[str, Any]) -> Any:
    from statsforecast.models import AutoTheta

    return AutoTheta(season_length=params["season_length"])


def _ets_rules(params: dict[str, Any]) -> dict[str, str]:
    problems = {}
    if params["damped"] and params["trend"] == "N":
        problems["damped"] = "a damped model needs a trend (trend 'A')"
    if params["seasonality"] != "N" and params["season_length"] < 2:
        problems["season_length"] = "a seasonal model needs a season_length of at least 2"
    return problems


def _season(default: int = 24) -> Parameter:
    return Parameter("int", default, 1, 10_000, description="Observations per season (24 for hourly data with a daily cycle)")


_ORDERS = {
    "p": Parameter("int", 1, 0, 5, description="Autoregressive order"),
    "d": Parameter("int", 1, 0, 2, description="Differencing order"),
    "q": Parameter("int", 1, 0, 5, description="Moving-average order"),
    "include_drift": Parameter("bool", False, description="Add a linear drift term"),
}

CATALOGUE: dict[str, Algorithm] = {
    a.id: a
    for a in (
        Algorithm("naive", "Naive", "classical", "Repeats the last observed value.", _naive),
        Algorithm(
            "seasonal_naive",
            "Seasonal naive",
            "classical",
            "Repeats the value observed one season earlier; the baseline every model should beat.",
            _seasonal_naive,
            {"season_length": _season()},
        ),
        Algorithm("historic_average", "Historic average", "classical", "Forecasts the mean of the whole history.", _historic_average),
        Algorithm("arima", "ARIMA", "classical", "AutoRegressive Integrated Moving Average with explicit orders (p, d, q).", _arima, dict(_ORDERS)),
        Algorithm(
            "sarima",
            "SARIMA",
            "classical",
            "Seasonal ARIMA with explicit orders (p, d, q)(P, D, Q) and a season length.",
            _arima,
            {
                **_ORDERS,
                "P": Parameter("int", 1, 0, 2, description="Seasonal autoregressive order"),
                "D": Parameter("int", 0, 0, 1, description="Seasonal differencing order"),
                "Q": Parameter("int", 1, 0, 2, description="Seasonal moving-average order"),
                "season_length": _season(),
            },
        ),
        Algorithm(
            "auto_arima",
            "AutoARIMA",
            "classical",
            "Chooses the ARIMA orders by information criterion (stepwise search, Hyndman-Khandakar).",
            _auto_arima,
            {"season_length": _season(), "max_p": Parameter("int", 5, 0, 5), "max_q": Parameter("int", 5, 0, 5)},
        ),
        Algorithm(
            "ets",
            "ETS",
            "classical",
            "Exponential smoothing state-space model with the error, trend and seasonality you choose.",
            _ets,
            {
                "error": Parameter("choice", "A", choices=("A", "M"), description="Additive or multiplicative errors"),
                "trend": Parameter("choice", "A", choices=("N", "A"), description="No trend or additive trend"),
                "seasonality": Parameter("choice", "A", choices=("N", "A", "M"), description="No, additive or multiplicative season"),
                "damped": Parameter("bool", False, description="Damp the trend"),
                "season_length": _season(),
            },
            check=_ets_rules,
        ),
        Algorithm("auto_ets", "AutoETS", "classical", "Chooses the exponential smoothing model by information criterion.", _auto_ets, {"season_length": _season()}),
        Algorithm(
            "theta",
            "Theta",
            "classical",
            "The Theta method (Assimakopoulos & Nikolopoulos) on the deseasonalised series.",
            _theta,
            {"season_length": _season(), "decomposition": Parameter("choice", "multiplicative", choices=("multiplicative", "additive"))},
        ),
        Algorithm("auto_theta", "AutoTheta", "classical", "Chooses among Theta variants by in-sample error.", _auto_theta, {"season_length": _season()}),
    )
}


def get_algorithm(algorithm_id: str) -> Algorithm:
    try:
        return CATALOGUE[algorithm_id]
    except KeyError:
        raise UnknownAlgorithm(f"Unknown algorithm '{algorithm_id}'", {"algorithm": f"choose one of {sorted(CATALOGUE)}"}) from None


def catalogue_by_family() -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {"classical": [], "machine_learning": [], "deep_learning": []}
    for algorithm in CATALOGUE.values():
        grouped[algorithm.family].append(algorithm.to_schema())
    return grouped
