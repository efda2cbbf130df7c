"""`ferryman web`: the dashboard. The same config, flows, events, locks and logs as the CLI,
served to a browser: FastAPI pages rendered by Jinja2, htmx for partial refreshes, server-sent
events for live step logs. Static assets ship in the package (no CDN, no build step)."""
