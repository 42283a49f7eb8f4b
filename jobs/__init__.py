"""Messages and the dramatiq actors that handle them.

Importing this package declares nothing; ``jobs.actors`` (what the dramatiq CLI loads) installs
the broker and then declares every actor.
"""
