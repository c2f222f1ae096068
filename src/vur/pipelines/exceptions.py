from vur.core.errors import Conflict, NotFound, UnprocessableEntity


class PipelineNotFound(NotFound):
    pass


class PipelineBusy(Conflict):
    pass


class StepOutOfOrder(UnprocessableEntity):
    pass


class StepAlreadyDone(Conflict):
    pass


class InvalidPipeline(UnprocessableEntity):
    pass


class InvalidDocument(UnprocessableEntity):
    pass
