"""Servers that speak WebSocket through ws4py: WSGI (wsgiutils), wsgiref."""
