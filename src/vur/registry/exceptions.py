from vur.core.errors import Conflict, NotFound


class ModelNotFound(NotFound):
    pass


class ModelBusy(Conflict):
    pass
