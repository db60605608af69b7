"""Named refs: pointers to artifacts with immutable version history and compare-and-set."""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from typing import Any

from symphony.commons.errors import ConflictError, NotFoundError, ValidationError
from symphony_artifact_store._core import StoreCore
from symphony_artifact_store._digest import Digest, check_ref_name
from symphony_artifact_store._model import RefEntry

__all__ = ["RefsMixin"]


class RefsMixin(StoreCore):
    """Refs such as ``reports/weekly``: set with compare-and-set, read, list, history, delete."""

    def set_ref(
        self,
        name: str,
        target: Digest | str,
        *,
        if_match: Digest | str | None = None,
        create_only: bool = False,
        message: str = "",
    ) -> RefEntry:
        """Point ref ``name`` at ``target`` (a stored artifact), keeping the old value in its history.

        Compare-and-set: with ``if_match`` the ref must currently point there; with
        ``create_only`` it must not exist yet. Either way a lost race raises instead of
        silently overwriting the other writer's value.

        Raises:
            ConflictError: ``artifact.ref.conflict`` naming the expected and actual values;
            NotFoundError: ``target`` is not stored; ValidationError: a bad name.
        """
        check_ref_name(name)
        digest = self.resolve(target)
        expected = None if if_match is None else str(self.resolve(if_match))
        if not isinstance(message, str) or len(message) > 10000:
            raise ValidationError(
                "message must be a string of at most 10,000 characters", code="artifact.ref.message"
            )
        now = time.time()
        with self.index.write() as txn:
            row = self.index.row(str(digest), txn)
            if row is None or row.state != "present":
                raise NotFoundError(
                    f"cannot point ref {name} at {digest}: it is not in the store",
                    code="artifact.not_found",
                    context={"ref": name, "digest": str(digest)},
                )
            current = txn.execute("SELECT digest FROM refs WHERE name = ?", (name,)).fetchone()
            actual = None if current is None else current[0]
            if (create_only and actual is not None) or (expected is not None and actual != expected):
                raise ConflictError(
                    f"ref {name} points to {actual or 'nothing'}, not {expected or 'nothing'}: another writer moved it",
                    code="artifact.ref.conflict",
                    context={"ref": name, "expected": expected, "actual": actual},
                    hint="read the ref again and retry",
                )
            last = txn.execute("SELECT MAX(version) FROM ref_history WHERE name = ?", (name,)).fetchone()[0]
            version = (last or 0) + 1
            txn.execute(
                "INSERT OR REPLACE INTO refs(name, digest, version, time, message) VALUES (?, ?, ?, ?, ?)",
                (name, str(digest), version, now, message),
            )
            txn.execute(
                "INSERT INTO ref_history(name, version, digest, time, message) VALUES (?, ?, ?, ?, ?)",
                (name, version, str(digest), now, message),
            )
        return RefEntry(name, digest, version, now, message)

    def get_ref(self, name: str) -> RefEntry:
        """The current value of a ref.

        Raises:
            NotFoundError: ``artifact.ref.not_found``; ValidationError: a bad name.
        """
        check_ref_name(name)
        found = self.index.query(
            "SELECT name, digest, version, time, message FROM refs WHERE name = ?", (name,)
        )
        if not found:
            raise NotFoundError(f"no ref named {name}", code="artifact.ref.not_found", context={"ref": name})
        return _ref_entry(found[0])

    def refs(self, prefix: str | None = None) -> builtins.list[RefEntry]:
        """Every current ref (those starting with ``prefix`` when given), by name."""
        if prefix:
            rows = self.index.query(
                "SELECT name, digest, version, time, message FROM refs WHERE name >= ? AND name < ? ORDER BY name",
                (prefix, prefix + "\U0010ffff"),
            )
        else:
            rows = self.index.query("SELECT name, digest, version, time, message FROM refs ORDER BY name")
        return [_ref_entry(r) for r in rows]

    def ref_history(self, name: str | None = None) -> builtins.list[RefEntry]:
        """Every version of one ref (or of all refs), oldest first. Versions are never rewritten."""
        if name is None:
            rows = self.index.query(
                "SELECT name, digest, version, time, message FROM ref_history ORDER BY name, version"
            )
        else:
            check_ref_name(name)
            rows = self.index.query(
                "SELECT name, digest, version, time, message FROM ref_history WHERE name = ? ORDER BY version",
                (name,),
            )
        return [_ref_entry(r) for r in rows]

    def delete_ref(self, name: str, *, if_match: Digest | str | None = None) -> None:
        """Remove a ref's current value (its history stays).

        Raises:
            NotFoundError: no such ref; ConflictError: ``if_match`` does not match.
        """
        check_ref_name(name)
        expected = None if if_match is None else str(self.resolve(if_match))
        with self.index.write() as txn:
            current = txn.execute("SELECT digest FROM refs WHERE name = ?", (name,)).fetchone()
            if current is None:
                raise NotFoundError(
                    f"no ref named {name}", code="artifact.ref.not_found", context={"ref": name}
                )
            if expected is not None and current[0] != expected:
                raise ConflictError(
                    f"ref {name} points to {current[0]}, not {expected}",
                    code="artifact.ref.conflict",
                    context={"ref": name, "expected": expected, "actual": current[0]},
                )
            txn.execute("DELETE FROM refs WHERE name = ?", (name,))


def _ref_entry(row: Sequence[Any]) -> RefEntry:
    return RefEntry(row[0], Digest._trusted(row[1]), row[2], row[3], row[4])
