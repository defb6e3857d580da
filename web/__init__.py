"""The web site and APIs, built on registry's read views and write path."""
