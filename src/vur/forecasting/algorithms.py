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
        if problems:
            raise InvalidHyperparameters(f"Invalid hyperparameters for {self.id}", problems)
        return {name: given.get(name, p.default) for name, p in self.parameters.items()}


def _naive(_: dict[str, Any]) -> Any:
    from statsforecast.models import Naive

    return Naive()


def _seasonal_naive(params: dict[str, Any]) -> Any:
    from statsforecast.models import SeasonalNaive

    return SeasonalNaive(season_length=params["season_length"])


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
            {"season_length": Parameter("int", 24, 1, 10_000, description="Observations per season (24 for hourly data with a daily cycle)")},
        ),
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
