"""Ray Serve runtime: the FastAPI ingress (HTTP API, WebSocket, health, metrics) with the MCP server
mounted at ``/mcp``, its deployment, and ``nq-ray up``."""
