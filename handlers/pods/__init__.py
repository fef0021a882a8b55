"""Pod providers behind one interface: local (a subprocess on this machine) and, later, RunPod."""
