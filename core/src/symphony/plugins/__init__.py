"""Plugin discovery, manifests, states and resolution (the kernel's plugin machinery)."""
