"""The app's routes, one module per resource, each an `APIRouter` that `create_app` includes: the web
page (`pages`), what the server can paint with (`catalog`), one-pass stylization (`stylize`) and
optimization jobs (`jobs`)."""
