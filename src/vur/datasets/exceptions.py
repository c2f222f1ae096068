from vur.core.errors import NotFound, UnprocessableEntity, VurError


class DatasetNotFound(NotFound):
    pass


class UnreadableFile(VurError):
    status_code = 422


class InvalidDatasetConfig(UnprocessableEntity):
    pass
