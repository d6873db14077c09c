"""The Messenger Platform stand-in: the Graph API subset the service calls, and the chat page."""
