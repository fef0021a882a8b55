"""`pipeline jobs …` and `pipeline login`: a command-line client of the web API (Typer and Rich),
authenticated with an API token; it imports nothing of the server's (docs/operations.md, "Jobs from
the terminal")."""
