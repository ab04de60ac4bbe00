"""Registry HTTP clients shared by a pass: one per registry host and transport.

A pass over hundreds of image repositories on one registry used to make (and close) a client,
and its connection pool, per repository. `RegistryClients` keeps one client per (host,
transport) until `close`, so the repositories of a pass reuse its connections. httpx is
imported only when a client is first made (engine/observe/httpclient.py), so holding an
empty pool costs a command nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.observe.transport import Transport

if TYPE_CHECKING:
    import httpx


class RegistryClients:
    """The clients of one pass, by (registry host, transport); the owner closes them."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, Transport], httpx.Client] = {}

    def __len__(self) -> int:
        return len(self._clients)

    def client(self, registry: str, transport: Transport) -> httpx.Client:
        """The pass's client for `registry` reached through `transport` (made the first time).
        A listing's session keeps its tokens to itself; cookies are cleared after each use
        (`done`), so nothing one repository's listing received goes with another's."""
        key = (registry, transport)
        found = self._clients.get(key)
        if found is None:
            from engine.observe.httpclient import registry_client
            found = self._clients[key] = registry_client(transport)
        return found

    @staticmethod
    def done(client: httpx.Client) -> None:
        """One listing is over: forget what the registry set in the client's cookie jar."""
        client.cookies.clear()

    def close(self) -> None:
        """Close every client (their connections with them) and forget them."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
