"""The pipeline: configuration, stages, the runner and the pure physics kernels."""

from tasks.runner import run

__all__ = ["run"]
