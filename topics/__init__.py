"""The topic catalog: every topic trackbridge uses, and its provisioning."""
