"""The job types that ship with the service; importing this package registers them."""

from app.jobs.builtin import simple

__all__ = ["simple"]
