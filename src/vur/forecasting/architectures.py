"""Network architectures, without building any: the rules a custom layer list (seed 4.3)
must follow, and the catalogue's LSTM, GRU and MLP presets. Plain Python, so the API
process checks requests without loading numpy or Keras; networks.py builds and trains.
"""

from __future__ import annotations

from typing import Any, Literal

RECURRENT = ("lstm", "gru")
WEIGHTED = ("lstm", "gru", "dense")
LAYER_TYPES = (*WEIGHTED, "dropout")
DEFAULT_ACTIVATION = {"lstm": "tanh", "gru": "tanh", "dense": "linear"}
OPTIMIZERS = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "adamw": "AdamW"}
LOSSES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "huber": "huber", "log_cosh": "log_cosh"}

# Every series must give at least this many complete windows (input_size + horizon).
MIN_WINDOWS = 10
# Automatic input_size: 2 x horizon kept in this range (recurrent layers slow down with length).
AUTO_INPUT_RANGE = (8, 512)
# The presets hold out this share of each series' latest windows for early stopping.
PRESET_VALIDATION_SPLIT = 0.1


# --- Architecture rules -------------------------------------------------------------


def _field(index: int, name: str) -> str:
    return f"architecture.layers[{index}].{name}"


def check_architecture(layers: list[dict[str, Any]], horizon: int) -> dict[str, str]:
    """What is wrong with a layer list, keyed by field path ("architecture.layers[2].units");
    empty when Keras can build it and its output fits the horizon."""
    if not layers:
        return {"architecture.layers": "add at least one layer, ending with a dense output layer"}
    problems: dict[str, str] = {}
    for index, layer in enumerate(layers):
        problems.update(_layer_problems(index, layer))
    if not any(layer.get("type") in WEIGHTED for layer in layers):
        problems["architecture.layers"] = "dropout layers alone learn nothing: add an lstm, gru or dense layer"
    if layers[0].get("type") == "dropout":
        problems[_field(0, "type")] = "a dropout layer cannot come first (it would blank observations of the input window): put it after an lstm, gru or dense layer"
    problems.update(_sequence_problems(layers))
    problems.update(_output_problems(len(layers) - 1, layers[-1], horizon))
    return problems


def _layer_problems(index: int, layer: dict[str, Any]) -> dict[str, str]:
    """The fields a layer's type takes (the schema has checked each value's range)."""
    kind = layer.get("type")
    if kind not in LAYER_TYPES:
        return {_field(index, "type"): f"must be one of {', '.join(LAYER_TYPES)}"}
    problems = {}
    if kind in WEIGHTED and layer.get("units") is None:
        problems[_field(index, "units")] = f"a {kind} layer needs units (1 to 1024)"
    if kind == "dropout":
        if layer.get("dropout") is None:
            problems[_field(index, "dropout")] = "a dropout layer needs its rate in dropout, e.g. 0.2"
        if layer.get("units") is not None:
            problems[_field(index, "units")] = "a dropout layer has no units: its rate is dropout"
        if layer.get("activation") is not None:
            problems[_field(index, "activation")] = "a dropout layer has no activation"
    if kind == "dense" and layer.get("dropout"):
        problems[_field(index, "dropout")] = "a dense layer has no dropout of its own: add a dropout layer after it"
    if kind not in RECURRENT and layer.get("return_sequences"):
        problems[_field(index, "return_sequences")] = "return_sequences applies only to lstm and gru layers"
    return problems


def _sequence_problems(layers: list[dict[str, Any]]) -> dict[str, str]:
    """A recurrent layer reads a sequence of steps. The input window is one; a recurrent
    layer passes one on only with return_sequences (dense and dropout layers in between
    keep whatever they get)."""
    problems = {}
    single = None  # the recurrent layer whose last output alone flows on, if any
    for index, layer in enumerate(layers):
        if layer.get("type") not in RECURRENT:
            continue
        if single is not None:
            problems[_field(single, "return_sequences")] = (
                f"layers[{index}] is a {layer['type']} layer, which reads a sequence of steps, but this layer passes on only its last step: set return_sequences to true"
            )
        single = None if layer.get("return_sequences") else index
    return problems


def _output_problems(index: int, layer: dict[str, Any], horizon: int) -> dict[str, str]:
    choices = "1 (recursive)" if horizon == 1 else f"1 (recursive) or {horizon} (direct)"
    if layer.get("type") != "dense":
        return {_field(index, "type"): f"the last layer must be a dense layer with units {choices}: 1 forecasts one step and repeats it over the horizon, {horizon} forecasts every step at once"}
    problems = {}
    units = layer.get("units")
    if units is not None and units not in (1, horizon):
        problems[_field(index, "units")] = f"the output layer has {units} units but the horizon is {horizon}: use {choices}"
    if layer.get("activation") not in (None, "linear"):
        problems[_field(index, "activation")] = f"the output layer predicts standardised values (mean 0, standard deviation 1), which {layer['activation']} cannot reach: use linear"
    return problems


def with_layer_defaults(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every field of every layer filled in, as the network is built (and worth storing
    as the model's configuration)."""
    return [
        {
            "type": layer["type"],
            "units": layer.get("units"),
            "activation": layer.get("activation") or DEFAULT_ACTIVATION.get(layer["type"]),
            "return_sequences": bool(layer.get("return_sequences")),
            "dropout": layer.get("dropout") or 0.0,
        }
        for layer in layers
    ]


# --- Catalogue presets ----------------------------------------------------------------


def _spec(type_: str, default: Any, min_: float | None = None, max_: float | None = None, description: str = "") -> dict[str, Any]:
    return {"type": type_, "default": default, "min": min_, "max": max_, "choices": None, "description": description}


def _preset_parameters(units: int, layers: int, epochs: int, batch_size: int, learning_rate: float) -> dict[str, dict[str, Any]]:
    return {
        "units": _spec("int", units, 1, 1024, "Units (neurons) of each hidden layer"),
        "layers": _spec("int", layers, 1, 4, "Hidden layers"),
        "dropout": _spec("float", 0.0, 0, 0.9, "Dropout rate of each hidden layer (0: none)"),
        "epochs": _spec("int", epochs, 1, 1000, "Most passes over the training windows"),
        "batch_size": _spec("int", batch_size, 1, 4096, "Windows per gradient step"),
        "learning_rate": _spec("float", learning_rate, 1e-6, 1, "Adam's learning rate"),
        "input_size": _spec("int", None, 2, 5000, "Past observations the network reads (null: 2 x horizon, between 8 and 512)"),
        "patience": _spec("int", 5, 1, 1000, "Epochs without a better validation loss before training stops"),
    }


# Defaults measured to train one 1,000-point hourly series (horizon 48) in under 25 s on
# this busy 2-core machine, Keras import included, with a forecast error below seasonal
# naive's. GRU steps cost about twice LSTM's on CPU, hence its larger batches.
PRESET_PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "lstm": _preset_parameters(units=32, layers=1, epochs=30, batch_size=32, learning_rate=0.005),
    "gru": _preset_parameters(units=32, layers=1, epochs=20, batch_size=64, learning_rate=0.01),
    "mlp": _preset_parameters(units=64, layers=2, epochs=50, batch_size=32, learning_rate=0.001),
}


def catalogue_architecture(kind: Literal["lstm", "gru", "mlp"], params: dict[str, Any], horizon: int) -> list[dict[str, Any]]:
    """The layers of a preset network: `layers` hidden layers of `units`, then a dense
    output of `horizon` units (direct)."""
    units, depth, dropout = params["units"], params["layers"], params["dropout"]
    if kind in RECURRENT:
        hidden = [{"type": kind, "units": units, "return_sequences": index < depth - 1, "dropout": dropout} for index in range(depth)]
    elif kind == "mlp":
        hidden = []
        for _ in range(depth):
            hidden.append({"type": "dense", "units": units, "activation": "relu"})
            if dropout:
                hidden.append({"type": "dropout", "dropout": dropout})
    else:
        raise ValueError(f"unknown preset network {kind!r}: choose lstm, gru or mlp")
    return [*hidden, {"type": "dense", "units": horizon, "activation": "linear"}]


def catalogue_fit_settings(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `compilation` and `training` of a preset network, from its parameters."""
    compilation = {"optimizer": "adam", "learning_rate": params["learning_rate"], "loss": "mse", "metrics": ["mae"]}
    training = {
        "epochs": params["epochs"],
        "batch_size": params["batch_size"],
        "validation_split": PRESET_VALIDATION_SPLIT,
        "early_stopping": {"enabled": True, "patience": params["patience"], "monitor": "val_loss"},
    }
    return compilation, training
