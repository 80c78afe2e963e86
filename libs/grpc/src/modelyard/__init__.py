"""Generated protobuf and gRPC modules (`make protos` writes modelyard/v1/*_pb2*.py); never edit them."""
