"""Views of the dashboard's pages: thin, each parses input, calls one selector or service and
renders. Scope and roles come from ``dashboard.access``."""
