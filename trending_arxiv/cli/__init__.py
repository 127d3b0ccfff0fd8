"""The command line: `trending-arxiv` (main), the search commands (queries) and extract."""
