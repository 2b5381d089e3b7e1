"""The reward server: FastAPI app, micro-batching, request schema, a client."""
