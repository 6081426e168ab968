"""The service over HTTP: the FastAPI app, its routers (the API, the admin routes, the round,
the dispatcher's page and its static assets), the request and answer schemas, the views of
the live and logged state, auth and the Prometheus figures."""
