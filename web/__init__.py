"""Litestar + Jinja2 dashboard and JSON API."""
