"""The audit trail, as operations staff read it: who changed what, when, from the entries every
change writes (app/outbox)."""
