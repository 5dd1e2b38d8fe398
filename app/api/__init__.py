"""The HTTP layer: routes, dependencies and ASGI middleware. Routes stay thin."""
