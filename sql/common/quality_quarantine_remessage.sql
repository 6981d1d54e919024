-- Rows that still fail after a release attempt keep waiting, with the rule and message of this attempt.
UPDATE quarantine AS q
SET rule = r.rule, message = r.message
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, rule text, message text)
WHERE q.id = r.id AND q.released_at IS NULL
