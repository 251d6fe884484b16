"""The commands a person runs outside pytest."""
