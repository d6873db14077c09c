"""Messenger: webhook inbox, conversation engine, message builders, Send API outbox, Profile."""
