"""Routing: which configured model(s) a request goes to, and why (the `route_reason`)."""
