"""Ordered SQL migrations, applied once each by `pipeline db migrate` and at every start."""
