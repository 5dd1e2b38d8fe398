"""Executing runs outside the request path: the task, the worker process, the runner."""
