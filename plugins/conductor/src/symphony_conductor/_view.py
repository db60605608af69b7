"""What ``symphony run`` shows: a live table fed by ``run.*`` events on a terminal, plain lines
otherwise, and the closing summary with the outputs.

The view reads only event payloads (plain dicts), so it shows a run in this process and a run
in a served kernel the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from symphony.cli import plain

__all__ = ["RunView", "format_seconds", "format_value"]

_STYLES = {
    "pending": "dim",
    "queued": "cyan",
    "running": "bold yellow",
    "completed": "green",
    "cached": "green",
    "failed": "bold red",
    "skipped": "magenta",
    "cancelled": "red",
}
SMALL_VALUE = 120
"""Outputs whose JSON text is at most this long are printed; larger ones are shown by digest."""


def format_seconds(seconds: float | None) -> str:
    """``0.42 s``, ``12.3 s``, ``2 min 05 s``; ``""`` for ``None``."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def format_value(output: Mapping[str, Any]) -> str:
    """One output for people: the value itself when small, else its kind, size and digest."""
    if "value" in output and not isinstance(output["value"], bytes | bytearray):
        value = output["value"]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        if len(text) <= SMALL_VALUE:
            return plain(text)
    parts = [str(output.get("type") or "value")]
    if output.get("size") is not None:
        parts.append(f"{output['size']} bytes")
    if output.get("digest"):
        parts.append(str(output["digest"]))
    return "(" + ", ".join(parts) + ")"


class RunView:
    """The state of one run as its events arrive; renders a rich table or prints plain lines.

    ``live=True`` keeps a table (one row per node: state, attempt, time, cached) and a progress
    line for :class:`rich.live.Live`; ``live=False`` prints one line per node change with
    ``echo``.
    """

    def __init__(
        self,
        run_id: str,
        *,
        live: bool,
        echo: Callable[[str], None] = print,
        nodes: Mapping[str, str] | None = None,
        workflow: str = "",
    ) -> None:
        self.run_id = run_id
        self.live = live
        self.echo = echo
        self.workflow = workflow
        self.nodes: dict[str, dict[str, Any]] = {
            node_id: {"type": node_type, "state": "pending"} for node_id, node_type in (nodes or {}).items()
        }
        """Node id -> its row: type, state, attempt, duration, cached, error (``nodes`` pre-fills
        them, node id -> type, so the first frame already shows every node)."""
        self.progress: dict[str, Any] = {}
        self.state = "pending"
        self.final: dict[str, Any] | None = None
        self._started = time.monotonic()

    # -- events -----------------------------------------------------------------------------

    def feed(self, type_: str, payload: Mapping[str, Any]) -> None:
        """Take one ``run.*`` event (others, and other runs' events, are ignored)."""
        if payload.get("run_id") != self.run_id:
            return
        if type_ == "run.started":
            self.workflow = str(payload.get("workflow", ""))
            for node in payload.get("nodes", ()):
                self.nodes.setdefault(str(node["id"]), {"type": node.get("type", ""), "state": "pending"})
            self.state = "running"
            if not self.live:
                self.echo(f"run {self.run_id}: {plain(self.workflow)} ({len(self.nodes)} nodes)")
        elif type_ == "run.node":
            node_id = str(payload.get("node"))
            row = self.nodes.setdefault(node_id, {"type": payload.get("type", ""), "state": "pending"})
            row.update(
                {k: payload[k] for k in ("state", "attempt", "duration", "cached", "error") if k in payload}
            )
            if payload.get("progress"):
                self.progress = dict(payload["progress"])
            retrying = row["state"] == "running" and int(row.get("attempt") or 0) > 1
            if not self.live and (
                retrying or row["state"] in ("completed", "failed", "skipped", "cancelled")
            ):
                self.echo(self._line(node_id, row))
        elif type_ == "run.state":
            self.state = str(payload.get("state", self.state))
            if not self.live and self.state in ("paused", "waiting_for_input"):
                self.echo(f"run {self.run_id}: {self.state}")
        elif type_ == "run.finished":
            self.final = dict(payload)
            self.state = str(payload.get("state", self.state))
            if payload.get("progress"):
                self.progress = dict(payload["progress"])
            for node_id, info in (payload.get("nodes") or {}).items():
                self.nodes.setdefault(node_id, {}).update(info)

    def _line(self, node_id: str, row: Mapping[str, Any]) -> str:
        state = "cached" if row.get("cached") and row.get("state") == "completed" else str(row.get("state"))
        parts = [f"  {plain(node_id)}: {state}"]
        if row.get("attempt", 0) and int(row["attempt"]) > 1:
            parts.append(f"attempt {row['attempt']}")
        if row.get("state") != "running" and row.get("duration") is not None:
            parts.append(format_seconds(float(row["duration"])))
        if row.get("error"):
            parts.append(f"error: {plain(str(row['error']).splitlines()[-1] if row['error'] else '')}")
        return ", ".join(parts)

    # -- rendering ----------------------------------------------------------------------------

    def render(self) -> Any:
        """A rich renderable: the node table and the overall progress."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"run {self.run_id}  {plain(self.workflow)}", title_justify="left")
        for column in ("node", "type", "state", "attempt", "time", "cached"):
            table.add_column(column, no_wrap=column != "type")
        for node_id, row in self.nodes.items():
            state = str(row.get("state", "pending"))
            duration = row.get("duration")
            table.add_row(
                Text(plain(node_id)),
                Text(plain(row.get("type", ""))),
                Text(state, style=_STYLES.get(state, "")),
                str(row.get("attempt") or ""),
                format_seconds(float(duration)) if duration is not None else "",
                Text("cached", style="green") if row.get("cached") else Text(""),
            )
        return Group(table, Text(self.progress_line()))

    def progress_line(self) -> str:
        """``3/5 done (60%) · ETA 1.2 s · 0.8 s elapsed · running``."""
        p = self.progress
        total = p.get("total", len(self.nodes))
        done = p.get("done", sum(r.get("state") in ("completed", "skipped") for r in self.nodes.values()))
        percent = p.get("percent", 0.0 if not total else round(100.0 * done / total, 1))
        parts = [f"{done}/{total} done ({percent:.0f}%)"]
        eta = p.get("eta_seconds")
        if eta is not None and self.state == "running":
            parts.append(f"ETA {format_seconds(float(eta))}")
        parts.append(f"{format_seconds(time.monotonic() - self._started)} elapsed")
        parts.append(self.state)
        return " · ".join(parts)

    def summary_lines(self) -> list[str]:
        """The closing lines: state, counts, time, error, and every output."""
        final = self.final or {}
        state = str(final.get("state", self.state))
        nodes = self.nodes
        cached = sum(bool(r.get("cached")) for r in nodes.values())
        counts: dict[str, int] = {}
        for row in nodes.values():
            counts[str(row.get("state"))] = counts.get(str(row.get("state")), 0) + 1
        shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        duration = final.get("duration")
        lines = [
            f"run {self.run_id} {state}"
            + (f" in {format_seconds(float(duration))}" if duration is not None else "")
            + f": {shown}"
            + (f" ({cached} cached)" if cached else "")
        ]
        if final.get("error"):
            lines.append(f"error: {plain(final['error'], newlines=True)}")
        outputs = final.get("outputs") or {}
        if outputs:
            lines.append("outputs:")
            for node_id, output in outputs.items():
                lines.append(f"  {plain(node_id)} = {format_value(output)}")
            if any(format_value(o).startswith("(") for o in outputs.values()):
                lines.append(f"  (print one with: symphony runs output {self.run_id} NODE)")
        return lines
