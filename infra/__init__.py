"""The ground floor: settings, database, bus, event store, object store, embedded servers, relay,
and the contracts shared by a producer and its consumers (telemetry, the pod's environment).
Imports only `domain/` and libraries."""
