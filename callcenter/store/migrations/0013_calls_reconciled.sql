-- Calls checked against (and corrected from) Asterisk's queue_log and CEL after an AMI gap
-- (callcenter/reconcile.py); reconstructed calls not yet checked, and all others, are false.
ALTER TABLE calls ADD COLUMN reconciled boolean NOT NULL DEFAULT false;
