"""TCP transport for the Symphony bus: ``tcp://host:port`` with TLS and a shared token.

    from symphony_transport_tcp import TcpTransport

The kernel finds it through the ``symphony.plugins`` entry point; import it directly only to
use the transport without a kernel.
"""

from __future__ import annotations

from symphony_transport_tcp.transport import TcpTransport, parse_tcp_url

__all__ = ["TcpTransport", "parse_tcp_url"]
__version__ = "0.1.0"
