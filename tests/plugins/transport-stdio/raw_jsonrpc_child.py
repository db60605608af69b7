"""A plain JSON-RPC 2.0 server written without Symphony (interoperability test).

Prints a non-JSON banner line first (a child that writes stray text), answers ``sum`` with
positional or named params, and ``-32601`` (no data) for anything else.
"""

from __future__ import annotations

import json
import sys

print("starting up (not JSON)", flush=True)
for line in sys.stdin:
    try:
        req = json.loads(line)
    except ValueError:
        print(
            json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}),
            flush=True,
        )
        continue
    if "id" not in req:
        continue
    if req.get("method") == "sum":
        params = req.get("params") or []
        values = params.values() if isinstance(params, dict) else params
        out = {"jsonrpc": "2.0", "id": req["id"], "result": sum(values)}
    else:
        out = {"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "Method not found"}}
    print(json.dumps(out), flush=True)
