"""The Lambda runtime: worker processes as execution environments, pooled per function."""
