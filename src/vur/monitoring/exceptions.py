from vur.core.errors import Conflict, NotFound


class AlertNotFound(NotFound):
    pass


class AlertRuleNotFound(NotFound):
    pass


class IllegalAlertChange(Conflict):
    pass
