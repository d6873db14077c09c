"""The conversation engine: turns shopper events into replies (written to the outbox).

``turn.py`` (what a handler gets), ``router.py`` (payloads and the handler registry),
``engine.py`` (the entry point), and one module per flow in ``flows/``.
"""
