from vur.core.errors import BadRequest, Conflict, NotFound, UnprocessableEntity, VurError


class DatasetNotFound(NotFound):
    pass


class UnreadableFile(VurError):
    status_code = 422


class InvalidDatasetConfig(UnprocessableEntity):
    pass


class InvalidQuery(BadRequest):
    pass


class DatasetInUse(Conflict):
    pass


class InvalidPreprocessing(UnprocessableEntity):
    pass
