"""Records of every topic and HTTP body, the event envelope and SQL schema.

This package depends on nothing else in the project.
"""
