from vur.core.errors import Conflict, NotFound, UnprocessableEntity


class ModelNotFound(NotFound):
    pass


class ModelBusy(Conflict):
    pass


class VersionNotFound(NotFound):
    pass


class InvalidBundle(UnprocessableEntity):
    pass


class ModelArchived(Conflict):
    pass


class IllegalStatusChange(Conflict):
    pass
