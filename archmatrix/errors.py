"""What goes wrong that is neither the user's input nor the guest's doing."""


class HarnessError(RuntimeError):
    """archmatrix cannot do its job here (no libvirt, a build failed, a host went away): cells end as errors."""


class HarnessWarning(UserWarning):
    """Something archmatrix cleaned up or worked around, that a user should know of."""
