"""A verify suite referenced by test scenarios; never run by the unit tests."""


def check_web_listens() -> None:
    pass
