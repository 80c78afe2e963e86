"""The Modelyard operator console: a web client of the services' gRPC APIs, like the `yard` CLI."""
