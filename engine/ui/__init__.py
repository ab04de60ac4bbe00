"""`gitward ui`: what the store records, as read-only pages and pictures in a browser."""
