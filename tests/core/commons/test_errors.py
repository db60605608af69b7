"""symphony.commons.errors: the sole exception inside (nested) exception groups."""

from __future__ import annotations

from symphony.commons.errors import ConfigError, NotFoundError, sole_exception


def test_sole_exception_unwraps_groups_of_one() -> None:
    inner = ConfigError("bad", code="config.bad")
    assert sole_exception(inner) is inner
    assert sole_exception(ExceptionGroup("g", [inner])) is inner
    assert sole_exception(ExceptionGroup("outer", [ExceptionGroup("inner", [inner])])) is inner


def test_sole_exception_keeps_a_group_of_several() -> None:
    several = ExceptionGroup("outer", [ExceptionGroup("inner", [ConfigError("a"), NotFoundError("b")])])
    assert sole_exception(several) is several
    flat = ExceptionGroup("g", [ConfigError("a"), NotFoundError("b")])
    assert sole_exception(flat) is flat
