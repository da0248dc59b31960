"""Version 1 of the API: every route lives under `app.core.config.API_V1_PREFIX`."""
