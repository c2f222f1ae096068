from vur.core.errors import BadRequest, Conflict, NotFound, UnprocessableEntity


class MachineNotFound(NotFound):
    pass


class RankingNotFound(NotFound):
    pass


class MachineBusy(Conflict):
    pass


class InvalidTrainingData(UnprocessableEntity):
    pass


class IncompleteWebhook(BadRequest):
    pass
