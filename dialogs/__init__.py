"""Conversations, free of any channel SDK: answer, choices, fallback, help and the rest."""
