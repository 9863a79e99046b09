"""The bot itself: settings, the turn glue around botbuilder, middleware, state and analytics."""
