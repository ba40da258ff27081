"""A synchronous client for the Neutron v2.0 REST API (Netplex's or any other).

.. code-block:: python

    from netplex.client import NeutronClient, NotFound

    with NeutronClient("http://127.0.0.1:9696") as client:
        port = client.update_port(port_id, {"binding:host_id": "compute-1"})

Error bodies (``{"NeutronError": {"type", "message", "detail"}}``) become the
exceptions listed in :mod:`netplex.client._errors` (tree in its docstring).
This package imports nothing from the server side of Netplex.
"""

from netplex.client._client import DEFAULT_URL, NeutronClient, collection_of
from netplex.client._errors import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidResponse,
    NotFound,
    PreconditionFailed,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    error_from_response,
)

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "InvalidResponse",
    "NeutronClient",
    "NotFound",
    "PreconditionFailed",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "collection_of",
    "error_from_response",
]
