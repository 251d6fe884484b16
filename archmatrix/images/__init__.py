"""The images cells boot: built-in ones built from Debian packages or sources and cached by content, and a user's."""
