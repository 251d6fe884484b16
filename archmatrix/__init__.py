"""archmatrix: boot real guests through libvirt and report which arches a host runs."""

__version__ = "0.1.0"
