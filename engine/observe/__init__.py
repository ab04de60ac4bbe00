"""Observers: talk to git, registries and the cluster, and only record facts."""
