"""What OpenStack Nova does with an image's properties on a host."""
