"""The operations console: server-rendered pages over the JSON API (no build step, no CDN)."""
