from vur.core.errors import Conflict, Forbidden, NotFound, Unauthorized


class InvalidCredentials(Unauthorized):
    def __init__(self) -> None:
        super().__init__("Invalid email or password")


class InvalidToken(Unauthorized):
    def __init__(self, message: str = "Invalid or expired token") -> None:
        super().__init__(message)


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("An account with this email already exists", {"email": "already registered"})


class ReadOnlyRole(Forbidden):
    def __init__(self) -> None:
        super().__init__("Viewers cannot make changes in this workspace")


class AdminRequired(Forbidden):
    def __init__(self) -> None:
        super().__init__("Only workspace admins can do this")


class MemberNotFound(NotFound):
    pass


class LastAdmin(Conflict):
    def __init__(self) -> None:
        super().__init__("A workspace must keep at least one active admin")
