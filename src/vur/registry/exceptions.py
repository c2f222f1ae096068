from vur.core.errors import NotFound


class ModelNotFound(NotFound):
    pass
