from vur.core.errors import Conflict, NotFound


class JobNotFound(NotFound):
    pass


class JobAlreadyFinished(Conflict):
    pass


class IllegalTransition(RuntimeError):
    """A status change that the job state machine does not allow (a bug, not user input)."""
