"""The commands that are the web API's client (pipeline/client/app.py), named once for the two
places that route them there: pipeline/entry.py, before the control plane is loaded, and
pipeline/cli.py."""

CLIENT_COMMANDS = frozenset({"jobs", "login", "logout"})
