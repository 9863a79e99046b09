"""Stand-ins for outside systems that tests share: real servers and databases, never mocks."""
