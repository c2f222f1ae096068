from vur.core.errors import Conflict, NotFound, UnprocessableEntity


class DomainNotFound(NotFound):
    pass


class DocumentNotFound(NotFound):
    pass


class SegmentNotFound(NotFound):
    pass


class TemplateNotFound(NotFound):
    pass


class SlugTaken(Conflict):
    pass


class DocumentBusy(Conflict):
    pass


class UnsupportedDocument(UnprocessableEntity):
    pass


class InvalidTemplate(UnprocessableEntity):
    pass
