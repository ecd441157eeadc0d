"""The transactional outbox and the audit trail: every change writes its event and its audit
entry in the same transaction as the change, so a rolled-back request leaves neither and a
committed one loses neither. Who acted comes from the request (`acting`)."""
