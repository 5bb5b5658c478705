"""The HTTP face of the registry: FastAPI app factory, dependencies, routers and error mapping."""
