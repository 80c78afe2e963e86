"""Pure functions from protobuf messages to rich renderables and lines of text."""
