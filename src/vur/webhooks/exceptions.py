from vur.core.errors import Conflict, NotFound, UnprocessableEntity


class WebhookNotFound(NotFound):
    pass


class DeliveryNotFound(NotFound):
    pass


class InvalidTarget(UnprocessableEntity):
    pass


class DeliveryQueued(Conflict):
    pass
