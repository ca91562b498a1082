"""`gateway simulate`: an OpenAI/vLLM-compatible upstream stand-in for demos, tests and benchmarks.

`app.create_app()` builds the ASGI app, `server.run()` serves it, `profiles.PROFILES` holds the
timing profiles. Importing the package does nothing else.
"""
