"""Use cases behind the HTTP edge: no Starlette types in here."""
