"""Unix domain socket transport for the Symphony bus: ``unix:///path/to.sock``.

    from symphony_transport_unix import UnixTransport

The kernel finds it through the ``symphony.plugins`` entry point; import it directly only to
use the transport without a kernel.
"""

from __future__ import annotations

from symphony_transport_unix.transport import UnixTransport, parse_unix_url, peer_credentials

__all__ = ["UnixTransport", "parse_unix_url", "peer_credentials"]
__version__ = "0.1.0"
