"""The libvirt hosts a run verifies: which ones, one connected, its KVM probe, and the hosts a run starts itself."""
