"""gRPC: servicers, proto conversion, the access policy and server streams."""
