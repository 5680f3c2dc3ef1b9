"""The WebSocket side of API Gateway: server, handshake, routing, Lambda events, limits, @connections."""
