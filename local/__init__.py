"""Local stand-ins for the cloud services the bridge talks to (simulators, local stack)."""
