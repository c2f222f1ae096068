from vur.core.errors import Conflict, UnprocessableEntity


class UnknownAlgorithm(UnprocessableEntity):
    pass


class InvalidHyperparameters(UnprocessableEntity):
    pass


class InvalidTrainingConfig(UnprocessableEntity):
    pass


class ForecastNotReady(Conflict):
    pass


class ForecastNeedsFutureValues(Conflict):
    pass


class AlreadyTraining(Conflict):
    pass


class NotTraining(Conflict):
    pass


class NothingToTrainOn(Conflict):
    pass


class PlotUnavailable(UnprocessableEntity):
    pass
