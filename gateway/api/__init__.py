"""The HTTP edge: thin handlers that parse, call one service method and render."""
