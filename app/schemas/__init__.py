"""Pydantic request and response bodies: `XCreate` in, `XPublic` out."""
