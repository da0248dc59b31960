"""The LXD client package: the client, its streams, operations and downloads."""
