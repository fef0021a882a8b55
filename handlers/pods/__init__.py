"""Pod providers behind one interface (provider.py): local subprocess pods and RunPod."""
