"""kmirror: rewrite every container image reference in Kubernetes YAML to a mirror."""

__version__ = "0.1.0"
