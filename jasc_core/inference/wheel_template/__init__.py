"""The runtime module copied into the inference wheels of ``jasc export --format wheel`` (never imported by jasc)."""
