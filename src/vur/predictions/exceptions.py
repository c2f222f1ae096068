from vur.core.errors import Conflict, NotFound, UnprocessableEntity


class PredictionNotFound(NotFound):
    pass


class ModelNotServable(Conflict):
    """The model has no trained version to predict with (configured, training, failed)."""


class InvalidPredictionRequest(UnprocessableEntity):
    pass


class BatchNotReady(Conflict):
    pass


class DatabaseNotFound(NotFound):
    pass


class StreamNotFound(NotFound):
    pass


class InvalidSource(UnprocessableEntity):
    pass


class StreamNotRunning(Conflict):
    pass
