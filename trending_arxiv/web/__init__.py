"""The HTTP API and the web page (`trending-arxiv serve`)."""
