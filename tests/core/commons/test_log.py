"""symphony.commons.log: outputs, idempotency, context binding, lazy loggers."""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from symphony.commons import log as symlog
from symphony.commons.config import load_config
from symphony.commons.errors import ConfigError
from symphony.commons.log import (
    bind_context,
    bound_context,
    configure_from_config,
    configure_logging,
    get_logger,
    is_configured,
    reset_logging,
    unbind_context,
)


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    reset_logging()
    yield
    reset_logging()
    unbind_context("plugin", "workflow", "node", "correlation_id", "request")


def _root_handlers() -> list[logging.Handler]:
    return list(logging.getLogger("symphony").handlers)


def _json_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_get_logger_is_lazy_and_autoconfigures(capsys: pytest.CaptureFixture[str]) -> None:
    logger = get_logger("lazy.test", component="x")
    assert not is_configured()
    assert _root_handlers() == []
    logger.info("first event", n=1)
    assert is_configured()
    assert len(_root_handlers()) == 1
    err = capsys.readouterr().err
    assert "first event" in err
    assert "[lazy.test]" in err  # compact (not a TTY) shows the logger name
    assert "component=x" in err and "n=1" in err


def test_console_goes_to_stderr_not_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(format="compact")
    get_logger("s").warning("to stderr")
    out, err = capsys.readouterr()
    assert out == ""
    assert "[warning]" in err and "to stderr" in err


def test_levels_filter(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="warning", format="compact")
    logger = get_logger("levels")
    logger.debug("d-hidden")
    logger.info("i-hidden")
    logger.warning("w-shown")
    logger.error("e-shown")
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert "w-shown" in err and "e-shown" in err
    configure_logging(level="debug", format="compact")
    logger.debug("d-now-shown")
    assert "d-now-shown" in capsys.readouterr().err


def test_idempotent_configuration() -> None:
    configure_logging(level="info", format="compact")
    handlers = _root_handlers()
    configure_logging(level="info", format="compact")
    assert _root_handlers() == handlers  # same objects, no duplicates
    configure_logging(level="info", format="compact", force=True)
    assert len(_root_handlers()) == 1
    assert _root_handlers() != handlers
    configure_logging(level="error", format="json")
    assert len(_root_handlers()) == 1
    assert logging.getLogger("symphony").level == logging.ERROR


def test_idempotent_with_files(tmp_path: Path) -> None:
    kwargs = {"file": tmp_path / "a.log", "json_file": tmp_path / "a.jsonl"}
    configure_logging(**kwargs)  # type: ignore[arg-type]
    first = _root_handlers()
    assert len(first) == 3
    configure_logging(**kwargs)  # type: ignore[arg-type]
    assert _root_handlers() == first


def test_json_file_contains_standard_fields_and_bound_context(tmp_path: Path) -> None:
    json_file = tmp_path / "logs" / "events.jsonl"
    configure_logging(console=False, json_file=json_file)
    logger = get_logger("json.test", plugin="symphony-x")
    bind_context(correlation_id="c-1")
    with bound_context(workflow="wf-7", node="n-3"):
        logger.info("inside", attempt=2)
    logger.bind(request="r-9").warning("outside")
    unbind_context("correlation_id")
    logger.error("unbound")
    first, second, third = _json_lines(json_file)
    assert list(first)[:4] == ["timestamp", "level", "logger", "event"]
    assert first["event"] == "inside"
    assert first["level"] == "info"
    assert first["logger"] == "json.test"
    assert str(first["timestamp"]).endswith("Z") and "T" in str(first["timestamp"])
    assert first["workflow"] == "wf-7" and first["node"] == "n-3"
    assert first["plugin"] == "symphony-x" and first["correlation_id"] == "c-1" and first["attempt"] == 2
    assert second["event"] == "outside" and second["request"] == "r-9"
    assert "workflow" not in second and second["correlation_id"] == "c-1"
    assert "correlation_id" not in third


def test_json_file_records_exceptions(tmp_path: Path) -> None:
    json_file = tmp_path / "e.jsonl"
    configure_logging(console=False, json_file=json_file)
    try:
        raise ValueError("kaboom")
    except ValueError:
        get_logger("exc").exception("failed")
    (line,) = _json_lines(json_file)
    assert line["level"] == "error"
    assert "ValueError: kaboom" in str(line["exception"])


@pytest.mark.anyio
async def test_bound_context_follows_tasks(tmp_path: Path) -> None:
    json_file = tmp_path / "tasks.jsonl"
    configure_logging(console=False, json_file=json_file)
    logger = get_logger("tasks")

    async def work(node: str) -> None:
        with bound_context(node=node):
            await anyio.sleep(0)
            logger.info("step")

    with bound_context(workflow="wf"):
        async with anyio.create_task_group() as tg:
            tg.start_soon(work, "a")
            tg.start_soon(work, "b")
    lines = _json_lines(json_file)
    assert sorted(str(line["node"]) for line in lines) == ["a", "b"]
    assert all(line["workflow"] == "wf" for line in lines)


def test_text_file_with_size_rotation_creates_parent_dirs(tmp_path: Path) -> None:
    log_file = tmp_path / "missing" / "parents" / "symphony.log"
    configure_logging(console=False, file=log_file, max_bytes=300, backup_count=2)
    logger = get_logger("rotate")
    for i in range(30):
        logger.info("rotating line", i=i)
    assert log_file.exists()
    assert (log_file.parent / "symphony.log.1").exists()
    assert not (log_file.parent / "symphony.log.3").exists()
    assert "rotating line" in log_file.read_text()
    handler = _root_handlers()[0]
    assert isinstance(handler, logging.handlers.RotatingFileHandler)


@pytest.mark.parametrize(("rotation", "when"), [("daily", "MIDNIGHT"), ("hourly", "H")])
def test_timed_rotation(tmp_path: Path, rotation: str, when: str) -> None:
    log_file = tmp_path / "new-dir" / "t.log"
    configure_logging(console=False, file=log_file, rotation=rotation, backup_count=3)
    (handler,) = _root_handlers()
    assert isinstance(handler, logging.handlers.TimedRotatingFileHandler)
    assert handler.when == when
    assert handler.backupCount == 3
    get_logger("t").warning("timed")
    assert "timed" in log_file.read_text()


def test_no_output_keeps_errors_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(console=False)
    logger = get_logger("quiet")
    logger.warning("not shown")
    logger.error("last resort")
    err = capsys.readouterr().err
    assert "not shown" not in err
    assert "last resort" in err


def test_propagate_hands_records_to_root(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging(console=False, propagate=True)
    assert _root_handlers() == []
    with caplog.at_level(logging.INFO):
        get_logger("prop").info("propagated", k=1)
    assert any("propagated" in record.getMessage() for record in caplog.records)


def test_pretty_and_json_console(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(format="pretty")
    get_logger("pretty").info("pretty event", key="v")
    err = capsys.readouterr().err
    assert "pretty event" in err and "key=v" in err and "\x1b[" not in err  # no colours off a TTY
    configure_logging(format="json")
    get_logger("j").info("json event")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "json event"


def test_foreign_stdlib_records_are_formatted(tmp_path: Path) -> None:
    json_file = tmp_path / "f.jsonl"
    configure_logging(console=False, json_file=json_file)
    logging.getLogger("symphony.plain").warning("plain %s", "stdlib")
    (line,) = _json_lines(json_file)
    assert line["event"] == "plain stdlib"
    assert line["logger"] == "symphony.plain"
    assert line["level"] == "warning"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"level": "loud"}, "logging.bad_level"),
        ({"format": "xml"}, "logging.bad_format"),
        ({"rotation": "weekly"}, "logging.bad_rotation"),
        ({"max_bytes": -1}, "logging.bad_size"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(ConfigError) as info:
        configure_logging(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == code


def test_failed_reconfiguration_keeps_previous_handlers(tmp_path: Path) -> None:
    configure_logging(format="compact")
    before = _root_handlers()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(Exception) as info:
        configure_logging(format="compact", file=blocker / "sub" / "x.log")
    assert type(info.value).__module__ == "symphony.commons.errors"
    assert _root_handlers() == before


def test_configure_from_config(tmp_path: Path) -> None:
    json_file = tmp_path / "c.jsonl"
    config = load_config(
        environ={},
        env="production",
        user_file=tmp_path / "none.toml",
        config_dir=None,
        overrides={"logging.json_file": str(json_file)},
    )
    configure_from_config(config)
    assert logging.getLogger("symphony").level == logging.WARNING
    logger = get_logger("cfg")
    logger.info("dropped")
    logger.warning("kept")
    assert [line["event"] for line in _json_lines(json_file)] == ["kept"]


def test_logger_names_outside_symphony_are_nested() -> None:
    assert symlog._stdlib_name("symphony") == "symphony"
    assert symlog._stdlib_name("symphony.kernel") == "symphony.kernel"
    assert symlog._stdlib_name("symphony_transport_unix") == "symphony.symphony_transport_unix"
    assert "lazy" in repr(get_logger("lazy"))


def test_lazy_configuration_from_config_applies_on_first_log(tmp_path) -> None:
    from symphony.commons import log as log_module
    from symphony.commons.config import load_config

    log_module.reset_logging()
    try:
        target = tmp_path / "lazy.jsonl"
        config = load_config(environ={}, user_file=tmp_path / "none.toml",
                             overrides={"logging": {"json_file": str(target), "level": "warning"}})
        log_module.configure_from_config(config, lazy=True)
        assert not log_module.is_configured()
        log_module.get_logger("symphony.test").warning("lazy hello")
        assert log_module.is_configured()
        assert "lazy hello" in target.read_text()
    finally:
        log_module.reset_logging()
