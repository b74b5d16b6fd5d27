"""Benchmarks print tables; keep the components' info logs out of them."""

from __future__ import annotations

import logging

import structlog


def pytest_configure() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
