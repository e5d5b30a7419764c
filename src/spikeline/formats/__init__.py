"""Vendor file formats: checks before reading, and writers for synthetic sessions."""
