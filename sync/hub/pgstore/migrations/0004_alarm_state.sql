-- Alarms get a state: open_key is set while an alarm is unresolved (the
-- condition it stands for: locker, type, compartment), so that the same
-- condition again updates it instead of raising another.
ALTER TABLE alarms ADD COLUMN open_key text;
CREATE INDEX alarms_open_key ON alarms (open_key, seq) WHERE open_key IS NOT NULL;
