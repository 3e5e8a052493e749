"""Kubernetes manifests for Vermilion, built as Python data and rendered to YAML."""
