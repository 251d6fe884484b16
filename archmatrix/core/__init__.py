"""The pure core: the arch catalog, plans, observations, the eight checks, the matrix. No I/O."""
