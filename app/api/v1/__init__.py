"""Version 1 of the API: every route lives under `PREFIX`."""

PREFIX = "/api/v1"
