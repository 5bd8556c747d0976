"""HTTP adapter (FastAPI): health and status now; the API, SCIM and UI come later."""
