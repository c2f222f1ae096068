from vur.core.errors import Conflict, Forbidden, NotFound, UnprocessableEntity, VurError


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


# --- exports and fine-tuning --------------------------------------------------------------


class ExportNotFound(NotFound):
    pass


class NotAnInstructionDataset(Conflict):
    pass


class EmptyExport(UnprocessableEntity):
    pass


class InvalidTrainingJob(UnprocessableEntity):
    pass


class TrainingJobNotFound(NotFound):
    pass


class TrainingJobFinished(Conflict):
    pass


class ModelBusyTraining(Conflict):
    pass


class BadDownloadSignature(Forbidden):
    pass


class DownloadExpired(VurError):
    status_code = 410


class ItemNotFound(NotFound):
    pass


class ProviderKeyNotFound(NotFound):
    pass


class NotInstructionDataset(UnprocessableEntity):
    pass


class CannotGenerate(UnprocessableEntity):
    """The dataset lacks what generation needs: a template, an API key, segments, values."""


class GenerationBusy(Conflict):
    pass
